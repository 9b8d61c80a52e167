import { Cluster, type Redis } from 'ioredis'
import type { RedisConnection } from './connection.js'

/**
 * What the Redis holding the queues promises to keep: a 202 (or a PUBACK) says "durably queued", which
 * holds only if Redis writes every command to its append-only file and never evicts a key.
 * `durable` is null when Redis does not let us ask (managed Redis often disables CONFIG).
 */
export interface RedisDurability {
  durable: boolean | null
  appendonly: string | null
  appendfsync: string | null
  maxmemory_policy: string | null
  /** What breaks the promise, in words (empty when durable). */
  problems: string[]
}

async function configValue(redis: Redis, name: string): Promise<string | null> {
  const reply = (await redis.config('GET', name)) as string[]
  return reply[1] ?? null
}

/**
 * Reads appendonly, appendfsync and maxmemory-policy; rejects only when Redis does not answer at all.
 * Through Sentinel the connection is the primary's, so that is who answers; on a cluster every
 * master holds queue keys (or will, after a resharding), so each is asked and each must keep its
 * promise.
 */
export async function readRedisDurability(redis: RedisConnection): Promise<RedisDurability> {
  if (!(redis instanceof Cluster)) return readServerDurability(redis)
  const masters = redis.nodes('master')
  if (masters.length === 0) throw new Error('Redis Cluster: no master known yet')
  const each = await Promise.all(masters.map((node) => readServerDurability(node)))
  const combined = (pick: (d: RedisDurability) => string | null) => {
    const values = [...new Set(each.map(pick))]
    return values.length === 1 ? (values[0] ?? null) : values.join(',')
  }
  return {
    durable: each.some((d) => d.durable === false) ? false : each.every((d) => d.durable) ? true : null,
    appendonly: combined((d) => d.appendonly),
    appendfsync: combined((d) => d.appendfsync),
    maxmemory_policy: combined((d) => d.maxmemory_policy),
    problems: each.flatMap((d, i) =>
      d.problems.map(
        (problem) => `master ${masters[i]?.options.host}:${masters[i]?.options.port}: ${problem}`,
      ),
    ),
  }
}

async function readServerDurability(redis: Redis): Promise<RedisDurability> {
  let values: (string | null)[]
  try {
    values = await Promise.all(
      ['appendonly', 'appendfsync', 'maxmemory-policy'].map((name) => configValue(redis, name)),
    )
  } catch (error) {
    // CONFIG refused (renamed, ACL, managed Redis): we cannot tell, so we do not claim it is fine.
    if (/CONFIG|unknown command|NOPERM|not allowed/i.test((error as Error).message)) {
      return {
        durable: null,
        appendonly: null,
        appendfsync: null,
        maxmemory_policy: null,
        problems: [`cannot tell: RedisConnection refused CONFIG GET (${(error as Error).message})`],
      }
    }
    throw error
  }
  const [appendonly = null, appendfsync = null, policy = null] = values
  const problems: string[] = []
  if (appendonly !== 'yes')
    problems.push(`appendonly is ${appendonly}: a Redis restart loses every queued, not yet stored point`)
  if (policy !== 'noeviction')
    problems.push(
      `maxmemory-policy is ${policy}: RedisConnection may evict queued jobs when memory runs short`,
    )
  return { durable: problems.length === 0, appendonly, appendfsync, maxmemory_policy: policy, problems }
}

/** Logs what Redis promises at start: one info line when durable, a loud warning otherwise. */
export async function reportRedisDurability(
  redis: RedisConnection,
  logger: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void },
): Promise<RedisDurability> {
  const durability = await readRedisDurability(redis)
  const { problems, ...settings } = durability
  if (durability.durable) logger.info(settings, 'redis is durable (append-only file, noeviction)')
  else
    logger.warn(
      { ...settings, problems },
      durability.durable === null
        ? 'REDIS DURABILITY UNKNOWN: cannot read its settings; make sure it runs appendonly yes and maxmemory-policy noeviction'
        : 'REDIS IS NOT DURABLE: acknowledged points may be lost; run it with appendonly yes and maxmemory-policy noeviction (infra/redis/redis.conf)',
    )
  return durability
}
