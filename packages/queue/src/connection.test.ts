import { startPrivateRedis } from '@iotflow/testkit'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createRedisConnection, warnIfEvictionPossible } from './connection.js'

let redis: Awaited<ReturnType<typeof startPrivateRedis>>
let connection: ReturnType<typeof createRedisConnection>

beforeAll(async () => {
  redis = await startPrivateRedis() // its own, so that changing its policy touches no one else
  connection = createRedisConnection(redis.url, 'worker')
})

afterAll(async () => {
  await connection?.quit()
  await redis?.dispose()
})

async function warningsAt(policy: string) {
  await connection.config('SET', 'maxmemory-policy', policy)
  const warnings: { obj: object; msg?: string }[] = []
  await warnIfEvictionPossible(connection, { warn: (obj, msg) => warnings.push({ obj, msg }) })
  return warnings
}

it('warns loudly, naming the policy, when Redis may evict queue keys, and stays quiet with noeviction', async () => {
  expect(await warningsAt('allkeys-lru')).toEqual([
    {
      obj: { policy: 'allkeys-lru' },
      msg: expect.stringContaining('REDIS maxmemory-policy IS NOT noeviction'),
    },
  ])
  expect(await warningsAt('noeviction')).toEqual([])
})
