import { serviceUrls, uniqueName } from '@iotflow/testkit'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll } from 'vitest'
import { createRedisConnection, waitForReady } from './connection.js'

/**
 * For a test file: a producer connection to the shared Redis and a queue prefix of its own, whose
 * keys (and those of `more()` prefixes) are deleted after the file.
 */
export function useTestRedis(name: string) {
  let redis: Redis | undefined
  const prefixes = [uniqueName(name)]
  beforeAll(async () => {
    redis = createRedisConnection(serviceUrls.redis, 'producer')
    await waitForReady(redis)
  })
  afterAll(async () => {
    if (!redis) return
    for (const prefix of prefixes) {
      const keys = await redis.keys(`{${prefix}}:*`)
      if (keys.length) await redis.del(...keys)
    }
    await redis.quit()
  })
  return {
    redis: () => redis as Redis,
    prefix: prefixes[0] as string,
    /** Another prefix, cleaned up likewise. */
    more() {
      const prefix = uniqueName(name)
      prefixes.push(prefix)
      return prefix
    },
  }
}
