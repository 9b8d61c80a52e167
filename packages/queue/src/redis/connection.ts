import type { Logger } from '@iotflow/runtime'
import { retryUntilSuccess } from '@iotflow/runtime'
import { Redis, type RedisOptions } from 'ioredis'

export type RedisRole = 'producer' | 'worker'

/**
 * Producers fail fast (no offline queue: a device is told 503 instead of waiting on a dead Redis,
 * and a command with no answer in 5 s fails rather than holding its requests forever); workers
 * block and retry forever, as BullMQ requires.
 */
export function createRedisConnection(url: string, role: RedisRole, extra: RedisOptions = {}): Redis {
  const options: RedisOptions =
    role === 'producer'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 5_000, ...extra }
      : { maxRetriesPerRequest: null, ...extra }
  return new Redis(url, {
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
    ...options,
  })
}

/**
 * Logs a connection's errors as warnings: ioredis reconnects by itself, and an 'error' event with
 * no listener would crash the process.
 */
export function warnOnRedisErrors(redis: Redis, logger: Pick<Logger, 'warn'>): Redis {
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
export function waitForReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
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
  redis: Redis,
  logger: Pick<Logger, 'warn'>,
  signal?: AbortSignal,
): Promise<void> {
  return retryUntilSuccess(() => waitForReady(redis, 5_000), { what: 'Redis', logger, signal })
}
