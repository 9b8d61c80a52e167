import type { RedisTarget } from '@iotflow/config'
import type { Logger } from '@iotflow/runtime'
import { retryUntilSuccess } from '@iotflow/runtime'
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import { keepSentinelConnectionAlive } from './sentinel-reconnect.js'

export type RedisRole = 'producer' | 'worker'

/**
 * A connection of ours: one server (a single Redis, or the primary Sentinel names, followed across
 * failovers) or a Redis Cluster. BullMQ, Lua scripts, MULTI and pub/sub work on both; on a cluster
 * every key one script or MULTI touches shares a hash slot (the `{prefix}` hash tag of every key).
 */
export type RedisConnection = Redis | Cluster

const reconnectDelay = (attempt: number) => Math.min(50 * 2 ** attempt, 2000)

/**
 * After a Sentinel failover the old primary may come back as a replica: a write on a connection
 * still open to it fails READONLY. Reconnecting asks the sentinels for the primary again, and the
 * command is sent once more (2) on the new one.
 */
const reconnectOnReadonly = (error: Error) => (error.message.startsWith('READONLY') ? 2 : false)

/**
 * The one place connections are made, for every app and tool. Producers fail fast (no offline
 * queue: a device is told 503 instead of waiting on a dead Redis, and a command with no answer in
 * 5 s fails rather than holding its requests forever); workers block and retry forever, as BullMQ
 * requires.
 */
export function createRedisConnection(
  target: RedisTarget,
  role: RedisRole,
  extra?: RedisOptions,
): RedisConnection
/** A single Redis by URL (tests and benchmarks that start their own). */
export function createRedisConnection(url: string, role: RedisRole, extra?: RedisOptions): Redis
export function createRedisConnection(
  targetOrUrl: RedisTarget | string,
  role: RedisRole,
  extra: RedisOptions = {},
): RedisConnection {
  const target: RedisTarget =
    typeof targetOrUrl === 'string' ? { mode: 'single', url: targetOrUrl } : targetOrUrl
  const options: RedisOptions =
    role === 'producer'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 5_000, ...extra }
      : { maxRetriesPerRequest: null, ...extra }
  switch (target.mode) {
    case 'single':
      return new Redis(target.url, { retryStrategy: reconnectDelay, ...options })
    case 'sentinel': {
      const connection = new Redis({
        sentinels: target.sentinels,
        name: target.name,
        ...(target.password !== undefined && { password: target.password }),
        ...(target.sentinelPassword !== undefined && { sentinelPassword: target.sentinelPassword }),
        // Learn of a failover from the sentinels' +switch-master at once, not at the next error.
        failoverDetector: true,
        sentinelRetryStrategy: reconnectDelay,
        retryStrategy: reconnectDelay,
        reconnectOnError: reconnectOnReadonly,
        ...options,
      })
      return keepSentinelConnectionAlive(connection)
    }
    case 'cluster': {
      const { enableOfflineQueue, ...nodeOptions } = options
      return new Cluster(target.nodes, {
        clusterRetryStrategy: reconnectDelay,
        ...(enableOfflineQueue !== undefined && { enableOfflineQueue }),
        // A slot moving to a promoted replica is retried there rather than failed.
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 200,
        redisOptions: {
          ...(target.password !== undefined && { password: target.password }),
          reconnectOnError: reconnectOnReadonly,
          ...nodeOptions,
        },
      })
    }
  }
}

/**
 * Logs a connection's errors as warnings: ioredis reconnects by itself, and an 'error' event with
 * no listener would crash the process.
 */
export function warnOnRedisErrors<C extends RedisConnection>(redis: C, logger: Pick<Logger, 'warn'>): C {
  redis.on('error', (error) => logger.warn({ err: error.message }, 'redis connection error'))
  return redis
}

/**
 * Options for every BullMQ Queue or FlowProducer made on a connection of ours that others share (a
 * producer's above all). BullMQ sets each one's connection up once, with one command of its own,
 * INFO (its Redis version check), and keeps that promise for the object's whole life: if the INFO
 * fails, every later call of the object rejects with that same error, even once Redis is back. On a
 * producer connection it fails whenever Redis goes away while it is in flight (maxRetriesPerRequest
 * 1: once the outage outlasts the first reconnect attempt, ioredis rejects what was in flight with
 * MaxRetriesPerRequestError) or takes over 5 s to answer: an enqueuer made just before an outage
 * then never queued again. Without the check BullMQ sends nothing there, so nothing can fail; our
 * own start-up checks Redis (waitUntilRedisReady, reportRedisDurability), and the workers, on
 * connections of their own, still run BullMQ's.
 */
export const onSharedConnection = { skipVersionCheck: true } as const

/** Resolves once the connection is ready, or rejects after `timeoutMs`. */
export function waitForReady(redis: RedisConnection, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`Redis not ready after ${timeoutMs} ms`))
    }, timeoutMs)
    const onReady = () => {
      cleanup()
      resolve()
    }
    const cleanup = () => {
      clearTimeout(timer)
      redis.off('ready', onReady)
    }
    redis.on('ready', onReady)
  })
}

/**
 * Waits as long as it takes for Redis to answer, logging each failed wait: an app started before
 * Redis (or during its restart) waits for it instead of crash-looping. ioredis keeps reconnecting.
 */
export function waitUntilRedisReady(
  redis: RedisConnection,
  logger: Pick<Logger, 'warn'>,
  signal?: AbortSignal,
): Promise<void> {
  return retryUntilSuccess(() => waitForReady(redis, 5_000), { what: 'Redis', logger, signal })
}
