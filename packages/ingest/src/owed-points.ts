import type { RateLimit } from '@iotflow/contracts'
import { groupedBy, type MultiTake, type TokenBuckets } from '@iotflow/queue'
import { type BucketView, type BucketViews, limitKey } from './bucket-views.js'

/**
 * How long the points of a device's queued batches may stay owed before they are taken in Redis:
 * well under VIEW_FRESH_MS, so a device that keeps sending keeps a fresh view (each take answers
 * its level).
 */
export const OWED_MAX_MS = 250

/**
 * The share of its burst a device may owe: a batch that brings its owed points to this is taken in
 * its own MULTI at once. It bounds what an instance that dies takes with it uncounted.
 */
export const OWED_MAX_SHARE = 0.01

/**
 * Points a device was admitted for without asking Redis (device-rate-limiter.ts) whose batches are
 * queued, not yet taken from its bucket: a device sending many small batches has them taken
 * together, one take every OWED_MAX_MS (or every OWED_MAX_SHARE of its burst) instead of one a batch.
 * The take rides the MULTI of the device's next batch once its points are due; a device that sent
 * nothing since has them taken by a call of its own (one per queue partition for every such device).
 * Until then they count as this instance's own takes not yet in its view (the view's `deferred`),
 * so its admissions stay within the bound of docs/telemetry-contract.md ("Rate limits").
 */
export function createOwedPoints(buckets: TokenBuckets, views: BucketViews) {
  /** The views with points owed, by device. */
  const owing = new Map<number, BucketView>()
  let timer: ReturnType<typeof setTimeout> | undefined
  let flushing: Promise<void> | undefined
  let closed = false

  /** Points now owed (their batch queued), owed since `since` (the views' clock) under `limit`. */
  function owe(deviceId: number, view: BucketView, points: number, since: number, limit: RateLimit) {
    view.owedSince = view.owed > 0 ? Math.min(view.owedSince, since) : since
    view.owed += points
    view.owedLimit = limit
    owing.set(deviceId, view)
    if (!closed) timer ??= setTimeout(tick, OWED_MAX_MS)
  }

  function tick() {
    timer = undefined
    flushing = flush((_, view, now) => now - view.owedSince >= OWED_MAX_MS).finally(() => {
      flushing = undefined
      if (owing.size > 0 && !closed) timer ??= setTimeout(tick, OWED_MAX_MS)
    })
  }

  /**
   * Takes the owed points of the devices `due` picks, in one call per queue prefix (one cluster
   * slot). Should a call fail, its points are owed again, for the next try.
   */
  async function flush(due: (deviceId: number, view: BucketView, now: number) => boolean): Promise<void> {
    const now = views.now()
    const taken = [...owing]
      .filter(([deviceId, view]) => due(deviceId, view, now))
      .map(([deviceId, view]) => {
        const entry = {
          deviceId,
          view,
          points: view.owed,
          since: view.owedSince,
          limit: view.owedLimit as RateLimit,
        }
        owing.delete(deviceId)
        view.owed = 0
        return entry
      })
    await Promise.all(
      [...groupedBy(taken, ({ deviceId }) => buckets.prefixOf(String(deviceId))).values()].map(
        async (group) => {
          try {
            const { levels, at } = await buckets.takeUnconditionally(
              group.map(({ deviceId, points, limit }) => ({
                name: String(deviceId),
                perSecond: limit.points_per_second,
                burst: limit.burst_points,
                cost: points,
              })),
            )
            group.forEach(({ view, points, limit }, i) => {
              view.deferred -= points
              const level = levels[i]
              if (level !== undefined) views.see(view, limitKey(limit), { level, at })
            })
          } catch {
            for (const { deviceId, view, points, since, limit } of group)
              owe(deviceId, view, points, since, limit)
          }
        },
      ),
    )
  }

  return {
    /**
     * The take of a batch admitted without asking, to run in the MULTI that queues it: its points
     * and what the device owes, once that is due or the points reach OWED_MAX_SHARE of its burst;
     * otherwise none (a take of 0, which only learns whether the batch was queued: its points are
     * then owed). Settled once (MultiTake).
     */
    takeFor(
      deviceId: number,
      view: BucketView,
      limit: RateLimit,
      points: number,
      now = views.now(),
    ): MultiTake {
      view.deferred += points
      if (view.bucketKey === '') view.bucketKey = buckets.keyOf(String(deviceId))
      const carries =
        view.owed + points >= OWED_MAX_SHARE * limit.burst_points ||
        (view.owed > 0 && now - view.owedSince >= OWED_MAX_MS)
      const carried = carries ? view.owed : 0
      const carriedSince = view.owedSince
      const carriedLimit = view.owedLimit
      if (carried > 0) {
        view.owed = 0
        owing.delete(deviceId)
      }
      let settled = false
      return {
        deviceId,
        key: view.bucketKey,
        perSecond: limit.points_per_second,
        burst: limit.burst_points,
        cost: carries ? points + carried : 0,
        settle(queued, reading) {
          if (settled) return
          settled = true
          if (!queued) {
            view.deferred -= points
            if (carried > 0) owe(deviceId, view, carried, carriedSince, carriedLimit as RateLimit)
          } else if (!carries) {
            owe(deviceId, view, points, now, limit)
          } else {
            view.deferred -= points + carried
            if (reading) views.see(view, limitKey(limit), reading)
          }
        },
      }
    },

    /** Takes now what the devices owe (before asking Redis for them: their takes count first). */
    async takeOwedBy(deviceIds: readonly number[]): Promise<void> {
      if (!deviceIds.some((id) => owing.has(id))) return
      await flush((deviceId) => deviceIds.includes(deviceId))
    },

    /** Stops the timer and takes everything owed (the caller closes the connection afterwards). */
    async close(): Promise<void> {
      closed = true
      clearTimeout(timer)
      timer = undefined
      await flushing
      await flush(() => true)
    },
  }
}

export type OwedPoints = ReturnType<typeof createOwedPoints>
