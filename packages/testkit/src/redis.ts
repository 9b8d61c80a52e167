import { Redis } from 'ioredis'
import { startPrivateServer } from './private-server.js'

export interface PrivateRedisOptions {
  /** Keep every write in an fsync'd append-only file, so a stop and start loses nothing (as in production). */
  durable?: boolean
}

/** A private redis-server (no persistence unless `durable`) that a test may stop and start. */
export async function startPrivateRedis(options: PrivateRedisOptions = {}) {
  const server = await startPrivateServer({
    name: 'redis',
    command: 'redis-server',
    args: (dir, port) => [
      '--bind',
      '127.0.0.1',
      '--port',
      String(port),
      '--dir',
      dir,
      '--save',
      '',
      ...(options.durable ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
    ],
    answers: async (port) => {
      const client = new Redis({
        port,
        host: '127.0.0.1',
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      })
      client.on('error', () => {}) // refused while it starts: that is the answer "not yet"
      try {
        await client.connect()
        return (await client.ping()) === 'PONG'
      } finally {
        client.disconnect()
      }
    },
  })
  return { ...server, url: `redis://127.0.0.1:${server.port}` }
}
