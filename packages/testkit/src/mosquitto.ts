import { writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { startPrivateServer } from './private-server.js'

export interface PrivateMosquittoOptions {
  /** Lines added to the generated mosquitto.conf, given the broker's data directory. */
  config?: (dir: string) => string[]
}

/**
 * A private Mosquitto on a free port, with persistence in its temp directory and a config of the
 * test's own (queue limits, authentication): for every test that depends on broker settings, so
 * the shared broker on 1883 is never reconfigured. No limit on queued messages unless the test
 * sets one (the default of 1,000 per client would drop messages a test expects to be kept).
 */
export async function startPrivateMosquitto(options: PrivateMosquittoOptions = {}) {
  const server = await startPrivateServer({
    name: 'mosquitto',
    command: 'mosquitto',
    args: (dir, port) => {
      const file = join(dir, 'mosquitto.conf')
      const lines = [
        `listener ${port} 127.0.0.1`,
        'persistence true',
        `persistence_location ${dir}/`,
        'max_queued_messages 0',
        'log_dest none',
        // Started as root, mosquitto would switch to the `mosquitto` user, which cannot write here.
        'user root',
        ...(options.config?.(dir) ?? ['allow_anonymous true']),
      ]
      writeFileSync(file, `${lines.join('\n')}\n`)
      return ['-c', file]
    },
    // Debian installs the broker in /usr/sbin, which a non-root PATH often lacks.
    env: () => ({ PATH: `${process.env.PATH ?? ''}:/usr/local/sbin:/usr/sbin` }),
    answers: (port) =>
      new Promise<boolean>((resolve) => {
        const socket = connect(port, '127.0.0.1')
        socket.once('connect', () => {
          socket.destroy()
          resolve(true)
        })
        socket.once('error', () => resolve(false))
      }),
  })
  return { ...server, url: `mqtt://127.0.0.1:${server.port}` }
}
