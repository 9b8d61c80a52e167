import { Cluster, Redis } from 'ioredis'
import { startPrivateServer } from './private-server.js'

export interface PrivateRedisOptions {
  /**
   * An append-only file: `always` fsyncs every write, so a crash loses nothing it acknowledged;
   * `everysec` is what production runs (infra/local, docker-compose.yml).
   */
  appendfsync?: 'always' | 'everysec'
  /** More redis-server arguments (e.g. `--rename-command CONFIG ""`, as managed Redis does). */
  extraArgs?: string[]
}

/** A private redis-server (no persistence unless asked) that a test may stop, kill and start. */
export async function startPrivateRedis(options: PrivateRedisOptions = {}) {
  const persistence = options.appendfsync
    ? ['--appendonly', 'yes', '--appendfsync', options.appendfsync]
    : ['--appendonly', 'no']
  const server = await startPrivateServer({
    name: 'redis',
    command: 'redis-server',
    args: (dir, port) => [...redisServerArgs(dir, port, persistence), ...(options.extraArgs ?? [])],
    answers: answersPing,
  })
  return { ...server, url: `redis://127.0.0.1:${server.port}` }
}

/**
 * Deletes every key matching `pattern` (e.g. a queue prefix, `{prefix}:*`), without blocking Redis.
 * On a Redis Cluster, on every master: SCAN sees one node's keys, and one UNLINK may name only keys
 * of one slot, so each key is unlinked alone (pipelined).
 */
export async function deleteKeys(redis: Redis | Cluster, pattern: string): Promise<void> {
  if (redis instanceof Cluster) {
    await Promise.all(redis.nodes('master').map((node) => deleteKeysOfNode(node, pattern, true)))
    return
  }
  await deleteKeysOfNode(redis, pattern, false)
}

/** Queue prefixes' keys, unpartitioned (`{prefix}:…`) and of every queue partition (`{prefix:p<k>}:…`). */
export const queueKeysPattern = (queuePrefix: string) => `{${queuePrefix}[}:]*`

async function deleteKeysOfNode(node: Redis, pattern: string, oneSlotPerKey: boolean): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    if (keys.length && oneSlotPerKey) await node.pipeline(keys.map((key) => ['unlink', key])).exec()
    else if (keys.length) await node.unlink(...keys)
    cursor = next
  } while (cursor !== '0')
}

/** One command to the server on `port` (a data node or a sentinel), on a connection of its own. */
export async function redisCommand(port: number, ...args: (string | number)[]): Promise<unknown> {
  const client = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  client.on('error', () => {}) // refused while it starts or after a kill: the command rejects
  try {
    await client.connect()
    const [name, ...rest] = args
    return await client.call(String(name), ...rest)
  } finally {
    client.disconnect()
  }
}

/** Whether the server on `port` answers PING: what a starting redis-server or sentinel is waited for. */
export const answersPing = async (port: number) => (await redisCommand(port, 'PING')) === 'PONG'

/** A redis-server of a test's own on loopback: no RDB snapshots, never evicting, and `persistence`. */
export const redisServerArgs = (dir: string, port: number, persistence: string[]) => [
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
]
