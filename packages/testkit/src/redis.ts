import { Redis } from 'ioredis'
import { startPrivateServer } from './private-server.js'

export interface PrivateRedisOptions {
  /** `always`: an append-only file fsynced on every write, so a crash loses nothing it acknowledged. */
  appendfsync?: 'always'
}

/** A private redis-server (no persistence unless asked) that a test may stop, kill and start. */
export async function startPrivateRedis(options: PrivateRedisOptions = {}) {
  const persistence = options.appendfsync
    ? ['--appendonly', 'yes', '--appendfsync', options.appendfsync]
    : ['--appendonly', 'no']
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
      '--maxmemory-policy',
      'noeviction',
      ...persistence,
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
