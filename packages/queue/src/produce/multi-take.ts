import type { ChainableCommander } from 'ioredis'
import type { RedisConnection } from '../redis/connection.js'
import {
  takeUnconditionally,
  UNCONDITIONAL_TAKE_COMMAND,
  type UnconditionalTake,
  type UnconditionalTakeReply,
  unconditionalTakeArgs,
} from './token-buckets.js'

/**
 * Tokens a batch takes from its device's bucket inside the MULTI that queues it (token-buckets.ts's
 * format), admitted beforehand without asking Redis (device-rate-limiter.ts): the take is atomic
 * with the enqueue and costs no round trip of its own. A take of 0 tokens takes nothing: it only
 * learns whether its batch was queued (its points are owed, to be taken later by the limiter).
 */
export interface MultiTake {
  /** Routes the take to the device's queue partition, whose hash tag its bucket shares. */
  deviceId: number
  /** The bucket's Redis key (TokenBuckets.keyOf). */
  key: string
  perSecond: number
  burst: number
  cost: number
  /**
   * How the batch's MULTI ended: `queued` whether it ran, with the bucket's level after the take
   * and Redis's clock (ms) then when the take ran in it (none for a take of 0, or when the script
   * failed inside an EXEC that queued the batch: a call of its own then takes the tokens). Only the
   * first call counts: the enqueuer settles what it was handed from every way out (the MULTI's
   * answer, its failure, a batch never sent), so an implementation ignores the calls after it.
   */
  settle(queued: boolean, reading?: { level: number; at: number }): void
}

type MultiWithTake = ChainableCommander & {
  [UNCONDITIONAL_TAKE_COMMAND](keyCount: number, ...keysAndArgs: string[]): ChainableCommander
}

/**
 * The buckets to take from: one per device however many of its takes the MULTI carries (their
 * costs summed, the latest limit's rate and burst), and each take's bucket index (-1: takes nothing).
 */
function bucketsOf(takes: readonly MultiTake[]): { buckets: UnconditionalTake[]; bucketOf: number[] } {
  const buckets: UnconditionalTake[] = []
  const indexOf = new Map<string, number>()
  const bucketOf = takes.map((take) => {
    if (take.cost === 0) return -1
    const index = indexOf.get(take.key)
    if (index === undefined) {
      indexOf.set(take.key, buckets.length)
      buckets.push({ key: take.key, perSecond: take.perSecond, burst: take.burst, cost: take.cost })
      return buckets.length - 1
    }
    const bucket = buckets[index] as UnconditionalTake
    bucket.perSecond = take.perSecond
    bucket.burst = take.burst
    bucket.cost += take.cost
    return index
  })
  return { buckets, bucketOf }
}

/** Settles each take as queued, with its bucket's level when the script answered. */
function settleQueued(takes: readonly MultiTake[], bucketOf: number[], reply?: UnconditionalTakeReply) {
  takes.forEach((take, i) => {
    const level = reply?.[0]?.[bucketOf[i] as number]
    if (level === undefined) take.settle(true)
    else take.settle(true, { level: Number(level), at: Number(reply?.[1]) })
  })
}

/**
 * Adds the takes to a MULTI being built (all in one slot: the caller's partition) and settles them
 * once it has run. The MULTI's EXEC answers each command in order; this one's answer is found by
 * its place in the queue, which ioredis starts with the MULTI itself. Should the script fail inside
 * an EXEC that queued the batch (NOSCRIPT after a SCRIPT FLUSH, say), the batch is queued and owes
 * its tokens: they are taken in a call of their own, which also loads the script again.
 */
export function addTakesToMulti(
  redis: RedisConnection,
  multi: ChainableCommander,
  takes: readonly MultiTake[],
) {
  if (takes.length === 0) return
  const { buckets, bucketOf } = bucketsOf(takes)
  if (buckets.length > 0)
    (multi as MultiWithTake)[UNCONDITIONAL_TAKE_COMMAND](buckets.length, ...unconditionalTakeArgs(buckets))
  const answerIndex = multi.length - 2
  const exec = multi.exec.bind(multi)
  let settled = false
  multi.exec = ((callback?: Parameters<typeof exec>[0]) => {
    const running = exec(callback)
    if (!settled) {
      settled = true
      running.then(
        (answers) => {
          if (buckets.length === 0) return settleQueued(takes, bucketOf)
          const [error, reply] = answers?.[answerIndex] ?? [new Error('no answer'), undefined]
          if (!error) return settleQueued(takes, bucketOf, reply as UnconditionalTakeReply)
          settleQueued(takes, bucketOf)
          takeUnconditionally(redis, buckets).catch(() => {})
        },
        () => {
          for (const take of takes) take.settle(false)
        },
      )
    }
    return running
  }) as typeof multi.exec
}
