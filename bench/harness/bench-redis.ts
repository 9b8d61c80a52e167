import { redisTargetOf } from '@iotflow/config'
import { createRedisConnection, type RedisConnection, waitForReady } from '@iotflow/queue'
import { startPrivateRedis, startPrivateRedisCluster, uniqueName } from '@iotflow/testkit'
import { spreadQueuePrefix } from '../../test/support/redis-ha-apps.js'
import type { WatchedProcess } from './sampler.js'
import type { Teardown } from './teardown.js'

/**
 * The Redis a scenario's apps queue into: the bench's single Redis, or a Redis Cluster with the
 * queues in partitions (scenario 10). Either is private and configured as production (AOF every
 * second, `noeviction`), so that its CPU and memory are the pipeline's alone.
 */
export interface BenchRedis {
  /** What the reports call it. */
  name: string
  /** The bench's own connection (queue depths, memory, deleting a scenario's keys). */
  connection: RedisConnection
  /** The apps' variables for this Redis: REDIS_URL or REDIS_CLUSTER_NODES, and QUEUE_PARTITIONS. */
  env: Record<string, string>
  partitions: number
  /** A queue prefix for a scenario's apps: on a cluster, one whose partitions fall on every master. */
  queuePrefix(): Promise<string>
  /** Every redis-server process, for the CPU and memory table. */
  processes(): WatchedProcess[]
  /** used_memory of every node together, in bytes. */
  usedMemory(): Promise<number>
}

/**
 * Fails fast rather than waits: on Ctrl-C the terminal stops the bench's redis-servers too, and the
 * teardown must not wait on them.
 */
async function benchConnection(teardown: Teardown, connection: RedisConnection): Promise<RedisConnection> {
  teardown.add('the Redis connection', connection, (r) => r.quit().catch(() => r.disconnect()))
  connection.on('error', () => {})
  await waitForReady(connection, 30_000)
  return connection
}

/** used_memory of the server, or of every node of a cluster together, in bytes. */
async function usedMemoryOf(connection: RedisConnection): Promise<number> {
  const nodes = 'nodes' in connection ? connection.nodes('all') : [connection]
  const infos = await Promise.all(nodes.map((node) => node.info('memory')))
  return infos.reduce((sum, info) => sum + Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0), 0)
}

/** The bench's single Redis, for the whole run. */
export async function startSingleBenchRedis(teardown: Teardown): Promise<BenchRedis> {
  const server = teardown.add(
    'the private Redis',
    await startPrivateRedis({ appendfsync: 'everysec' }),
    (s) => s.dispose(),
  )
  const connection = await benchConnection(teardown, createRedisConnection(server.url, 'producer'))
  return {
    name: 'single Redis',
    connection,
    env: { REDIS_URL: server.url },
    partitions: 1,
    queuePrefix: async () => uniqueName('bench'),
    processes: () => {
      const pid = server.pid()
      return pid === undefined ? [] : [{ name: 'redis-server (private)', pid, resetPeak: true }]
    },
    usedMemory: () => usedMemoryOf(connection),
  }
}

/**
 * A Redis Cluster of 3 masters (each with `replicasPerMaster` replicas), its nodes configured as
 * the single Redis is, and the apps' queues in `partitions` partitions. An inherited REDIS_URL
 * would be a second Redis mode, which the apps refuse: it is emptied.
 */
export async function startClusterBenchRedis(
  teardown: Teardown,
  options: { partitions: number; replicasPerMaster: 0 | 1 },
): Promise<BenchRedis> {
  const cluster = teardown.add(
    'the private Redis Cluster',
    await startPrivateRedisCluster({ replicasPerMaster: options.replicasPerMaster }),
    (c) => c.dispose(),
  )
  const env = cluster.env()
  const connection = await benchConnection(
    teardown,
    createRedisConnection(redisTargetOf(env), 'producer', { enableOfflineQueue: true }),
  )
  const masters = new Set((await cluster.masters()).map((node) => node.port))
  return {
    name: `Redis Cluster (3 masters${options.replicasPerMaster ? ', a replica each' : ''})`,
    connection,
    env: { REDIS_URL: '', ...env, QUEUE_PARTITIONS: String(options.partitions) },
    partitions: options.partitions,
    queuePrefix: async () => (await spreadQueuePrefix(cluster, options.partitions, 'bench')).prefix,
    processes: () =>
      cluster.nodes.flatMap((node) => {
        const pid = node.pid()
        const role = masters.has(node.port) ? 'master' : 'replica'
        return pid === undefined
          ? []
          : [{ name: `redis-server (cluster ${role} :${node.port})`, pid, resetPeak: true }]
      }),
    usedMemory: () => usedMemoryOf(connection),
  }
}
