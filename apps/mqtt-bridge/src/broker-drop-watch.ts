import type { Logger } from '@iotflow/runtime'
import mqtt from 'mqtt'

/**
 * Mosquitto's count of messages it accepted and then dropped (a session's queue over
 * max_queued_messages or max_queued_bytes), published every sys_interval seconds. A device got its
 * PUBACK from the broker for each of them, yet the bridge never saw them: nothing else tells.
 */
export const BROKER_DROPPED_TOPIC = '$SYS/broker/publish/messages/dropped'

export interface BrokerDropWatch {
  close(): Promise<void>
}

export interface BrokerDropWatchOptions {
  url: string
  clientId: string
  username?: string | undefined
  password?: string | undefined
  logger: Logger
  /** Called with every count the broker publishes (its count since it started). */
  onCount(dropped: number): void
}

/**
 * Follows the broker's drop counter on a connection of its own (no session: only the latest value
 * matters) and warns whenever it rises. A broker that publishes no such topic, or denies it to the
 * bridge, never calls `onCount`.
 */
export function watchBrokerDrops(options: BrokerDropWatchOptions): BrokerDropWatch {
  const { logger } = options
  let dropped: number | undefined
  const client = mqtt.connect(options.url, {
    clientId: options.clientId,
    clean: true,
    reconnectPeriod: 1_000,
    connectTimeout: 10_000,
    ...(options.username !== undefined && { username: options.username, password: options.password }),
  })
  client.on('connect', () => {
    client.subscribe(BROKER_DROPPED_TOPIC, { qos: 0 }, (error) => {
      if (error) logger.info({ err: error.message }, 'cannot follow the broker drop counter')
    })
  })
  client.on('error', (error) => logger.debug({ err: error.message }, 'broker drop watch connection error'))
  client.on('message', (_topic, payload) => {
    const value = Number(payload.toString())
    if (!Number.isSafeInteger(value) || value < 0) return
    // Lower than before: the broker restarted and counts from 0 again.
    const previous = dropped === undefined || value < dropped ? 0 : dropped
    dropped = value
    options.onCount(value)
    if (value > previous) {
      logger.warn(
        { dropped: value, increase: value - previous, topic: BROKER_DROPPED_TOPIC },
        'THE MQTT BROKER DROPPED MESSAGES it had acknowledged to devices (a session queue over max_queued_messages or max_queued_bytes); they never reach the stores',
      )
    }
  })
  return {
    close: () => client.endAsync().catch(() => undefined),
  }
}
