import type { RateLimit } from '@iotflow/contracts'

/**
 * How long a bucket level read from Redis may decide a request without asking again: within it, the
 * other instances' takes this one cannot see are bounded (docs/telemetry-contract.md, "Rate limits").
 */
export const VIEW_FRESH_MS = 1000

/** One instance's view of a device's bucket: the last level Redis answered, and its own takes since. */
export interface BucketView {
  /** The level Redis last answered (after that call's take), and Redis's clock (ms) then. */
  level: number
  at: number
  /** When this instance read it (its own clock, ms): the view's age. */
  seenAt: number
  /** The limit (rate and burst) the level was computed with: another limit needs Redis's answer. */
  limit: string
  /** Points admitted to take inside a group commit's MULTI whose answer has not come back. */
  deferred: number
  /** Points of exact checks sent whose answer has not come back. */
  checking: number
  /**
   * Points of queued batches not yet taken from the bucket (owed-points.ts), also in `deferred`;
   * since when (this instance's clock), and under which limit they were admitted.
   */
  owed: number
  owedSince: number
  owedLimit: RateLimit | undefined
  /** The bucket's Redis key, once a take of this instance needed it ('' until then). */
  bucketKey: string
}

/**
 * A limit's identity in a view ("rate/burst"), made once per limit object: a device's limit stays
 * the same object while its device is cached, and the default is made once.
 */
const keyOfLimit = new WeakMap<RateLimit, string>()
export function limitKey(limit: RateLimit): string {
  let key = keyOfLimit.get(limit)
  if (key === undefined) {
    key = `${limit.points_per_second}/${limit.burst_points}`
    keyOfLimit.set(limit, key)
  }
  return key
}

/**
 * Per device, the last level of its bucket this instance saw and what it has taken since. Levels
 * come back with every take this instance makes (the exact check's and the MULTI's), so a device
 * that keeps sending through an instance keeps a fresh view without a call of its own. A view with
 * nothing outstanding is dropped once stale.
 */
export class BucketViews {
  private readonly views = new Map<number, BucketView>()
  private lastSweep = 0

  /** `now`: this instance's clock, in ms. */
  constructor(readonly now: () => number = () => performance.now()) {}

  /** The device's view, made (empty, never fresh) if there is none. */
  of(deviceId: number, now = this.now()): BucketView {
    this.sweep(now)
    let view = this.views.get(deviceId)
    if (!view) {
      view = {
        level: 0,
        at: -1,
        seenAt: Number.NEGATIVE_INFINITY,
        limit: '',
        deferred: 0,
        checking: 0,
        owed: 0,
        owedSince: 0,
        owedLimit: undefined,
        bucketKey: '',
      }
      this.views.set(deviceId, view)
    }
    return view
  }

  /**
   * What the device holds now, under the limit `limitKey` (its rate and burst), as far as this
   * instance can tell without asking: the level last read, refilled since it was read (by this
   * instance's clock, from when the answer arrived: never more than Redis will count), less its own
   * takes not in it; undefined when the view is stale or of another limit.
   */
  estimate(
    view: BucketView,
    limitKey: string,
    perSecond: number,
    burst: number,
    now = this.now(),
  ): number | undefined {
    const age = now - view.seenAt
    if (view.limit !== limitKey || age > VIEW_FRESH_MS) return undefined
    const refilled = Math.min(burst, view.level + (age * perSecond) / 1000)
    return refilled - view.deferred - view.checking
  }

  /**
   * A level Redis answered (at its clock `at`): kept unless a later one was already seen (answers of
   * one connection arrive in order, but their promise chains may run out of it).
   */
  see(view: BucketView, limit: string, reading: { level: number; at: number }): void {
    if (reading.at < view.at) return
    view.level = reading.level
    view.at = reading.at
    view.seenAt = this.now()
    view.limit = limit
  }

  get size(): number {
    return this.views.size
  }

  private sweep(now: number) {
    if (now - this.lastSweep < VIEW_FRESH_MS) return
    this.lastSweep = now
    for (const [deviceId, view] of this.views) {
      if (view.deferred === 0 && view.checking === 0 && now - view.seenAt > VIEW_FRESH_MS)
        this.views.delete(deviceId)
    }
  }
}
