import { BODY, type ErrorDetail, type RateLimit } from '@iotflow/contracts'
import { createTokenBuckets, type TokenBuckets } from '@iotflow/queue'

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
  | { ok: true }
  | { ok: false; status: 429; retryAfterSeconds: number; message: string }
  | { ok: false; status: 413; message: string; errors: ErrorDetail[] }

/**
 * Per-device rate limits in points, shared by every gateway and bridge through Redis: a request is
 * admitted only if every device it carries has the tokens for its points, and then all are taken in
 * the same step. A request larger than a device's burst could never pass: it is told so (413), not
 * told to retry.
 */
export function createDeviceRateLimiter(buckets: TokenBuckets, defaults: DefaultRateLimit) {
  const limitOf = (charge: RateCharge): RateLimit | null =>
    charge.rateLimit ??
    (defaults.pointsPerSecond > 0
      ? { points_per_second: defaults.pointsPerSecond, burst_points: defaults.burstPoints }
      : null)

  return {
    async admit(charges: readonly RateCharge[]): Promise<RateVerdict> {
      const limited = charges.flatMap((charge) => {
        const limit = limitOf(charge)
        return limit ? [{ charge, limit }] : []
      })
      const tooLarge = limited.filter(({ charge, limit }) => charge.points > limit.burst_points)
      if (tooLarge.length > 0) {
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
      const taken = await buckets.take(
        limited.map(({ charge, limit }) => ({
          name: String(charge.deviceId),
          perSecond: limit.points_per_second,
          burst: limit.burst_points,
          cost: charge.points,
        })),
      )
      if (taken.ok) return { ok: true }
      const retryAfterSeconds = Math.max(1, Math.ceil(taken.retryAfterMs / 1000))
      return {
        ok: false,
        status: 429,
        retryAfterSeconds,
        message: `over the device's rate limit; nothing was queued, retry in ${retryAfterSeconds} s`,
      }
    },
  }
}

export type DeviceRateLimiter = ReturnType<typeof createDeviceRateLimiter>

/** The device rate limiter of an app, from its QUEUE_PREFIX and DEVICE_RATE_* variables. */
export function deviceRateLimiterFrom(
  redis: Parameters<typeof createTokenBuckets>[0],
  config: { QUEUE_PREFIX: string; DEVICE_RATE_POINTS_PER_SECOND: number; DEVICE_RATE_BURST_POINTS: number },
): DeviceRateLimiter {
  return createDeviceRateLimiter(createTokenBuckets(redis, config.QUEUE_PREFIX, 'device'), {
    pointsPerSecond: config.DEVICE_RATE_POINTS_PER_SECOND,
    burstPoints: config.DEVICE_RATE_BURST_POINTS,
  })
}
