import { createRedisConnection, createTokenBuckets, waitForReady } from '@iotflow/queue'
import { deleteKeys, serviceUrls, uniqueName } from '@iotflow/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDeviceRateLimiter } from '../packages/ingest/src/device-rate-limiter.js'

/** The limiter's policy (defaults, a device's own limit, bursts) over real Redis buckets. */
let redis: ReturnType<typeof createRedisConnection>
const prefix = uniqueName('limiter')
beforeAll(async () => {
  redis = createRedisConnection(serviceUrls.redis, 'producer')
  await waitForReady(redis)
})
afterAll(async () => {
  await deleteKeys(redis, `{${prefix}}:*`)
  await redis.quit()
})

const limiterWith = (pointsPerSecond: number, burstPoints: number) =>
  createDeviceRateLimiter(createTokenBuckets(redis, prefix, uniqueName('device')), {
    pointsPerSecond,
    burstPoints,
  })

describe('the device rate limiter', () => {
  it('with the default off, limits only devices with a limit of their own', async () => {
    const limiter = limiterWith(0, 1)
    const own = { points_per_second: 0.001, burst_points: 5 }
    expect(await limiter.admit([{ deviceId: 1, points: 1_000_000 }])).toEqual({ ok: true })
    expect(await limiter.admit([{ deviceId: 2, rateLimit: own, points: 5 }])).toEqual({ ok: true })
    expect(await limiter.admit([{ deviceId: 2, rateLimit: own, points: 1 }])).toMatchObject({
      ok: false,
      status: 429,
      retryAfterSeconds: 1000,
    })
  })

  it('refuses with 413 the devices of a request that hold more points than their burst, naming each', async () => {
    const limiter = limiterWith(1000, 10)
    const verdict = await limiter.admit([
      { deviceId: 7, points: 11 },
      { deviceId: 8, points: 3 },
      { deviceId: 9, rateLimit: { points_per_second: 1, burst_points: 2 }, points: 3 },
    ])
    expect(verdict).toMatchObject({ ok: false, status: 413 })
    expect(verdict.ok === false && verdict.status === 413 && verdict.errors.map((e) => e.message)).toEqual([
      '11 points for device 7, more than its burst of 10 (split the request)',
      '3 points for device 9, more than its burst of 2 (split the request)',
    ])
    // Nothing was taken from device 8's bucket.
    expect(await limiter.admit([{ deviceId: 8, points: 10 }])).toEqual({ ok: true })
  })
})
