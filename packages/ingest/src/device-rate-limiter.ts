import { BODY, type ErrorDetail, type RateLimit } from '@iotflow/contracts'
import {
  createTokenBuckets,
  groupedBy,
  type MultiTake,
  partitionOfDevice,
  partitionPrefix,
  queueLayout,
  type TakeReading,
  type TokenBuckets,
} from '@iotflow/queue'
import { type BucketView, BucketViews, limitKey } from './bucket-views.js'
import { createOwedPoints } from './owed-points.js'

/** The limit of devices without one of their own (DEVICE_RATE_*); 0 points a second: none. */
export interface DefaultRateLimit {
  pointsPerSecond: number
  burstPoints: number
}

/** One device's share of a request: its own limit (null: the default) and the points it sends. */
export interface RateCharge {
  deviceId: number
  rateLimit?: RateLimit | null | undefined
  points: number
}

export type RateVerdict =
  | { ok: true; take?: MultiTake }
  | { ok: false; status: 429; retryAfterSeconds: number; message: string }
  | { ok: false; status: 413; message: string; errors: ErrorDetail[] }

/**
 * The share of its burst a device must hold, beyond a request's points, by this instance's view for
 * the request to be admitted without asking Redis (its take then rides the group commit's MULTI).
 * It bounds what instances that cannot see each other's takes may overspend together
 * (docs/telemetry-contract.md, "Rate limits"): each at most this share of a burst.
 */
const UNASKED_MARGIN = 0.5

const ADMITTED: RateVerdict = Object.freeze({ ok: true })

/** The 413 of charges larger than their device's burst: no retry could ever pass them. */
function tooLargeVerdict(
  tooLarge: readonly { charge: RateCharge; limit: RateLimit }[],
): Extract<RateVerdict, { status: 413 }> {
  return {
    ok: false,
    status: 413,
    message: 'the request holds more points than a device may ever send at once; nothing was queued',
    errors: tooLarge.map(({ charge, limit }) => ({
      path: BODY,
      message: `${charge.points} points for device ${charge.deviceId}, more than its burst of ${limit.burst_points} (split the request)`,
    })),
  }
}

interface Limited {
  charge: RateCharge
  limit: RateLimit
  view: BucketView
}

/**
 * Per-device rate limits in points, shared by every gateway and bridge through Redis: a request is
 * admitted only if every device it carries has the tokens for its points, and then all are taken in
 * the same step. A request larger than a device's burst could never pass: it is told so (413), not
 * told to retry. `admit` decides in Redis and takes at once; `admitDeferring` (requests queued
 * through the group commit) admits a device far from its limit by this instance's recent view of its
 * bucket, with the take done in the MULTI that queues the batch (for small batches, in that of a
 * later one: owed-points.ts), and asks Redis otherwise. `close` takes what is still owed.
 */
export function createDeviceRateLimiter(buckets: TokenBuckets, defaults: DefaultRateLimit) {
  const views = new BucketViews()
  const owed = createOwedPoints(buckets, views)
  const defaultLimit: RateLimit | null =
    defaults.pointsPerSecond > 0
      ? { points_per_second: defaults.pointsPerSecond, burst_points: defaults.burstPoints }
      : null
  const limitOf = (charge: RateCharge): RateLimit | null => charge.rateLimit ?? defaultLimit

  /** The charges under a limit, or the 413 of those larger than their burst. */
  function limitedOf(charges: readonly RateCharge[]): Limited[] | Extract<RateVerdict, { status: 413 }> {
    const limited = charges.flatMap((charge) => {
      const limit = limitOf(charge)
      return limit ? [{ charge, limit, view: views.of(charge.deviceId) }] : []
    })
    const tooLarge = limited.filter(({ charge, limit }) => charge.points > limit.burst_points)
    return tooLarge.length === 0 ? limited : tooLargeVerdict(tooLarge)
  }

  const bucketTake = ({ charge, limit, view }: Limited, cost: number) => ({
    name: String(charge.deviceId),
    perSecond: limit.points_per_second,
    burst: limit.burst_points,
    cost,
    // This instance's takes admitted for a MULTI not yet run must stay in the bucket too.
    reserve: cost > 0 ? view.deferred : 0,
  })

  /** One take per queue prefix (one script call each: one cluster slot), all at once. */
  async function takeByPrefix(
    groups: Limited[][],
    sign: 1 | -1,
  ): Promise<PromiseSettledResult<TakeReading>[]> {
    for (const group of groups)
      for (const { charge, view } of group) view.checking += sign > 0 ? charge.points : 0
    const readings = await Promise.allSettled(
      groups.map((group) => buckets.takeReading(group.map((l) => bucketTake(l, sign * l.charge.points)))),
    )
    groups.forEach((group, g) => {
      const reading = readings[g]
      group.forEach((l, i) => {
        if (sign > 0) l.view.checking -= l.charge.points
        const level = reading?.status === 'fulfilled' ? reading.value.levels[i] : undefined
        if (reading?.status === 'fulfilled' && level !== undefined)
          views.see(l.view, limitKey(l.limit), { level, at: reading.value.at })
      })
    })
    return readings
  }

  /**
   * Decides in Redis, taking at once, every device's points or none. Devices of several queue
   * partitions are in several hash slots, so one take per partition: should one refuse, the others'
   * tokens are given back (meanwhile they are missing, which can only refuse, never admit, too much).
   */
  async function takeNow(limited: Limited[]): Promise<RateVerdict> {
    // What the devices owe is taken first, under the limit it was admitted with.
    await owed.takeOwedBy(limited.map((l) => l.charge.deviceId))
    const groups = [...groupedBy(limited, (l) => buckets.prefixOf(String(l.charge.deviceId))).values()]
    const readings = await takeByPrefix(groups, 1)
    const taken = groups.filter((_, g) => {
      const reading = readings[g]
      return reading?.status === 'fulfilled' && reading.value.ok
    })
    if (taken.length === groups.length) return { ok: true }
    if (taken.length > 0) await takeByPrefix(taken, -1)
    const failed = readings.find((r) => r.status === 'rejected')
    if (failed) throw failed.reason
    const retryAfterMs = Math.max(
      ...readings.map((r) => (r.status === 'fulfilled' && !r.value.ok ? r.value.retryAfterMs : 0)),
    )
    const retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000))
    return {
      ok: false,
      status: 429,
      retryAfterSeconds,
      message: `over the device's rate limit; nothing was queued, retry in ${retryAfterSeconds} s`,
    }
  }

  return {
    /** Every device's points taken now in Redis, or none. */
    async admit(charges: readonly RateCharge[]): Promise<RateVerdict> {
      const limited = limitedOf(charges)
      if (!Array.isArray(limited)) return limited
      return takeNow(limited)
    },

    /**
     * One device's request queued through the group commit: admitted at once when, by this
     * instance's view (at most VIEW_FRESH_MS old, of the same limit), its bucket holds the points and
     * UNASKED_MARGIN of its burst besides, with the take (the `take` of the verdict) to run in the
     * batch's MULTI (a take of 0 while its points are owed); decided in Redis as `admit` otherwise,
     * e.g. near its limit or unknown here. A verdict reached without Redis is returned as is, not as
     * a promise.
     */
    admitDeferring(charge: RateCharge): RateVerdict | Promise<RateVerdict> {
      // The common case (a device far from its limit) decides here, without a promise or an array.
      const limit = limitOf(charge)
      if (limit === null) return ADMITTED
      if (charge.points > limit.burst_points) return tooLargeVerdict([{ charge, limit }])
      // One reading of the clock for the whole decision (performance.now() is a call into the runtime).
      const now = views.now()
      const one = { charge, limit, view: views.of(charge.deviceId, now) }
      const key = limitKey(limit)
      const estimate = views.estimate(one.view, key, limit.points_per_second, limit.burst_points, now)
      if (estimate !== undefined && estimate >= charge.points + UNASKED_MARGIN * limit.burst_points)
        return { ok: true, take: owed.takeFor(charge.deviceId, one.view, limit, charge.points, now) }
      return takeNow([one])
    },

    /** Takes what devices owe (owed-points.ts) and stops; the caller closes the connection after. */
    close: () => owed.close(),
  }
}

export type DeviceRateLimiter = ReturnType<typeof createDeviceRateLimiter>

/**
 * The device rate limiter of an app, from its QUEUE_PREFIX, QUEUE_PARTITIONS and DEVICE_RATE_*
 * variables: a device's bucket lives under its queue partition's hash tag, so that the MULTI
 * queueing its batch can take from it.
 */
export function deviceRateLimiterFrom(
  redis: Parameters<typeof createTokenBuckets>[0],
  config: {
    QUEUE_PREFIX: string
    QUEUE_PARTITIONS?: number | undefined
    DEVICE_RATE_POINTS_PER_SECOND: number
    DEVICE_RATE_BURST_POINTS: number
  },
): DeviceRateLimiter {
  const layout = queueLayout(config.QUEUE_PREFIX, config.QUEUE_PARTITIONS ?? 1)
  const prefixOf = (name: string) => partitionPrefix(layout, partitionOfDevice(layout, Number(name)))
  return createDeviceRateLimiter(createTokenBuckets(redis, prefixOf, 'device'), {
    pointsPerSecond: config.DEVICE_RATE_POINTS_PER_SECOND,
    burstPoints: config.DEVICE_RATE_BURST_POINTS,
  })
}
