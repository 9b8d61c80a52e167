import type { Redis } from 'ioredis'

/** Before starting over after an end nobody asked for: a short wait, so a failing start cannot spin. */
const RESTART_DELAY_MS = 100

/**
 * Keeps a Sentinel connection alive through a failover, and closes it whole when asked to.
 *
 * When a primary dies, the connection reconnects by asking the sentinels for the primary again. If
 * the sentinels' +switch-master (which ioredis's failover detector listens for) arrives while that
 * question is on its way, the detector's disconnect makes ioredis end the connection for good
 * (status `end`, no more retries), as if the app had closed it, and a worker on it stops for good
 * (the likely cause of the one fault scenario 10 run in 21 whose queues never drained). An end that
 * follows no quit() or disconnect() of ours is started over; one that does also closes the
 * detector's own connections to the sentinels, which quit() leaves open and which would keep a
 * tool's process alive.
 */
export function keepSentinelConnectionAlive(connection: Redis): Redis {
  let closing = false
  let restart: NodeJS.Timeout | undefined
  const quit = connection.quit.bind(connection)
  const disconnect = connection.disconnect.bind(connection)
  connection.quit = ((...args: Parameters<Redis['quit']>) => {
    closing = true
    clearTimeout(restart)
    return quit(...args)
  }) as Redis['quit']
  connection.disconnect = (reconnect = false) => {
    if (!reconnect) {
      closing = true
      clearTimeout(restart)
    }
    disconnect(reconnect)
  }
  connection.on('end', () => {
    if (closing) {
      disconnect()
      return
    }
    restart = setTimeout(() => {
      if (!closing && connection.status === 'end') connection.connect().catch(() => {})
    }, RESTART_DELAY_MS)
  })
  return connection
}
