import { type RedisTargetEnv, redisTargetOf } from '@iotflow/config'
import type { Logger } from '@iotflow/runtime'
import { type DependencyState, probe, type ReadinessReport } from '@iotflow/runtime'
import {
  createRedisConnection,
  type RedisConnection,
  waitUntilRedisReady,
  warnOnRedisErrors,
} from '../redis/connection.js'
import { reportRedisDurability } from '../redis/redis-durability.js'

/**
 * A queue consumer's connection (writers and the alert evaluator): a worker's (blocking, retrying
 * forever), once Redis answers, after saying what Redis promises about durability.
 */
export async function openConsumerConnection(
  config: RedisTargetEnv,
  logger: Pick<Logger, 'info' | 'warn' | 'error'>,
): Promise<RedisConnection> {
  const connection = createRedisConnection(redisTargetOf(config), 'worker')
  warnOnRedisErrors(connection, logger)
  await waitUntilRedisReady(connection, logger)
  await reportRedisDurability(connection, logger)
  return connection
}

/**
 * A consumer's /health/ready: Redis and `probes` (its store), and, when Redis is up, what `state`
 * reads there (its queue's depths; undefined when Redis does not answer it).
 */
export async function consumerReadiness<S extends object>(
  connection: RedisConnection,
  probes: Record<string, () => Promise<unknown>>,
  state: () => Promise<S | undefined>,
): Promise<ReadinessReport & Partial<S>> {
  const names = ['redis', ...Object.keys(probes)]
  const states = await Promise.all([
    probe(() => connection.ping()),
    ...Object.values(probes).map((check) => probe(check)),
  ])
  const dependencies: Record<string, DependencyState> = Object.fromEntries(
    names.map((dependency, i) => [dependency, states[i] as DependencyState]),
  )
  const details = dependencies.redis?.status === 'up' ? await state() : undefined
  return { dependencies, ...details } as ReadinessReport & Partial<S>
}
