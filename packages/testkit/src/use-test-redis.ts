import { Redis } from 'ioredis'
import { afterAll, beforeAll } from 'vitest'
import { uniqueName } from './names.js'
import { deleteKeys, queueKeysPattern } from './redis.js'
import { serviceUrls } from './services.js'

/**
 * For a test file: a connection to the shared Redis, set up as a producer's (no offline queue, one
 * retry), and a queue prefix of its own, whose keys (and those of `more()` prefixes) are deleted
 * after the file. A subpath of its own (`@iotflow/testkit/use-test-redis`): it registers vitest
 * hooks, which the bench, also a testkit user, does not run under.
 */
export function useTestRedis(name: string) {
  let redis: Redis | undefined
  const prefixes = [uniqueName(name)]
  beforeAll(async () => {
    redis = new Redis(serviceUrls.redis, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 5_000,
      lazyConnect: true,
    })
    await redis.connect()
  })
  afterAll(async () => {
    if (!redis) return
    for (const prefix of prefixes) await deleteKeys(redis, queueKeysPattern(prefix))
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
