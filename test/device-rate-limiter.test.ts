import {
  createBatchEnqueuer,
  createGroupCommitEnqueuer,
  createRedisConnection,
  createTokenBuckets,
  queueLayout,
  waitForReady,
} from '@iotflow/queue'
import { deleteKeys, serviceUrls, startPrivateRedis, uniqueName } from '@iotflow/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDeviceRateLimiter, type RateCharge } from '../packages/ingest/src/device-rate-limiter.js'
import { OWED_MAX_MS } from '../packages/ingest/src/owed-points.js'

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

const limiterWith = (pointsPerSecond: number, burstPoints: number, kind = uniqueName('device')) =>
  createDeviceRateLimiter(createTokenBuckets(redis, prefix, kind), {
    pointsPerSecond,
    burstPoints,
  })

/** The tokens left in a bucket of `kind` (the burst when it has no key: full). */
const tokensOf = async (kind: string, deviceId: number, burst: number) => {
  const state = await redis.get(`{${prefix}}:bucket:${kind}:${deviceId}`)
  return state === null ? burst : Number(state.split(' ')[0])
}

/** The admission of `charge` queued through a real group commit, as the ingest path does. */
async function queueAdmitted(
  limiter: ReturnType<typeof limiterWith>,
  enqueuer: ReturnType<typeof createGroupCommitEnqueuer>,
  charge: RateCharge,
) {
  const admission = Promise.resolve(limiter.admitDeferring(charge)).then((verdict) => {
    if (!verdict.ok) throw new Error(`refused: ${verdict.status}`)
    return verdict.take
  })
  const points = Array.from({ length: charge.points }, (_, i) => ({ t: Date.now() + i, data: { v: i } }))
  return enqueuer.enqueue({ device_id: charge.deviceId, received_at: Date.now(), points }, admission)
}

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

  describe('points owed by small batches (owed-points.ts)', () => {
    // No refill to speak of, a burst of 10,000: 1 % of it (100 points) may be owed.
    const burst = 10_000
    const setUp = () => {
      const kind = uniqueName('owed')
      const limiter = limiterWith(0.001, burst, kind)
      const enqueuer = createGroupCommitEnqueuer(createBatchEnqueuer(redis, queueLayout(prefix)), {
        maxPoints: 1000,
        lingerMs: 1,
        maxInFlight: 2,
      })
      return { kind, limiter, enqueuer }
    }

    it('takes the points of small batches together, and an idle device’s within twice OWED_MAX_MS', async () => {
      const { kind, limiter, enqueuer } = setUp()
      try {
        // Unknown: asked in Redis, taken at once.
        await queueAdmitted(limiter, enqueuer, { deviceId: 1, points: 3 })
        expect(await tokensOf(kind, 1, burst)).toBeCloseTo(burst - 3, 2)
        // Known far from its limit: queued with a take of 0, its points owed.
        for (let i = 0; i < 5; i++) await queueAdmitted(limiter, enqueuer, { deviceId: 1, points: 4 })
        const soon = await tokensOf(kind, 1, burst)
        // A batch that brings the owed points to 1 % of the burst carries them in its own MULTI.
        await queueAdmitted(limiter, enqueuer, { deviceId: 1, points: 90 })
        expect(await tokensOf(kind, 1, burst)).toBeCloseTo(burst - 3 - 20 - 90, 2)
        // Owed points never wait for another batch: a call of their own takes them.
        await queueAdmitted(limiter, enqueuer, { deviceId: 1, points: 7 })
        const started = performance.now()
        while ((await tokensOf(kind, 1, burst)) > burst - 120 + 0.5) {
          expect(performance.now() - started).toBeLessThan(2 * OWED_MAX_MS + 500)
          await new Promise((resolve) => setTimeout(resolve, 10))
        }
        expect(await tokensOf(kind, 1, burst)).toBeCloseTo(burst - 120, 2)
        // The five batches of 4 were owed, not taken one by one (unless 250 ms passed among them).
        expect(soon).toBeGreaterThan(burst - 3 - 20)
      } finally {
        await enqueuer.close()
        await limiter.close()
      }
    })

    it('takes nothing for a batch its MULTI did not queue, and everything owed on close', async () => {
      // A private Redis: it is made to refuse writes for a moment.
      const server = await startPrivateRedis()
      const own = createRedisConnection(server.url, 'producer')
      try {
        await waitForReady(own)
        const kind = uniqueName('owed')
        const limiter = createDeviceRateLimiter(createTokenBuckets(own, prefix, kind), {
          pointsPerSecond: 0.001,
          burstPoints: burst,
        })
        const enqueuer = createGroupCommitEnqueuer(createBatchEnqueuer(own, queueLayout(prefix)), {
          maxPoints: 1000,
          lingerMs: 1,
          maxInFlight: 2,
        })
        await queueAdmitted(limiter, enqueuer, { deviceId: 2, points: 1 })
        await queueAdmitted(limiter, enqueuer, { deviceId: 2, points: 5 })
        // Out of memory (noeviction): Redis refuses the next MULTI, so its batch is not queued.
        await own.config('SET', 'maxmemory', '1')
        await expect(queueAdmitted(limiter, enqueuer, { deviceId: 2, points: 50 })).rejects.toThrow(
          /EXECABORT/,
        )
        await own.config('SET', 'maxmemory', '0')
        await queueAdmitted(limiter, enqueuer, { deviceId: 2, points: 6 })
        await enqueuer.close()
        await limiter.close()
        // 1 asked, 5 and 6 owed and taken on close; the 50 of the batch never queued, never.
        const state = await own.get(`{${prefix}}:bucket:${kind}:2`)
        expect(Number(state?.split(' ')[0])).toBeCloseTo(burst - 12, 2)
      } finally {
        own.disconnect()
        await server.dispose()
      }
    })
  })
})
