import type { Logger } from '@iotflow/runtime'
import type { Redis } from 'ioredis'

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

/** Reads appendonly, appendfsync and maxmemory-policy; rejects only when Redis does not answer at all. */
export async function readRedisDurability(redis: Redis): Promise<RedisDurability> {
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
        problems: [`cannot tell: Redis refused CONFIG GET (${(error as Error).message})`],
      }
    }
    throw error
  }
  const [appendonly = null, appendfsync = null, policy = null] = values
  const problems: string[] = []
  if (appendonly !== 'yes')
    problems.push(`appendonly is ${appendonly}: a Redis restart loses every queued, not yet stored point`)
  if (policy !== 'noeviction')
    problems.push(`maxmemory-policy is ${policy}: Redis may evict queued jobs when memory runs short`)
  return { durable: problems.length === 0, appendonly, appendfsync, maxmemory_policy: policy, problems }
}

/** Logs what Redis promises at start: one info line when durable, a loud warning otherwise. */
export async function reportRedisDurability(
  redis: Redis,
  logger: Pick<Logger, 'info' | 'warn'>,
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
