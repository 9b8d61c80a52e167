import type { ChainableCommander } from 'ioredis'
import type { RedisConnection } from '../redis/connection.js'
import { READ_LEVEL_LUA } from './token-buckets.js'

/**
 * Tokens a batch takes from its device's bucket inside the MULTI that queues it (token-buckets.ts's
 * format), admitted beforehand without asking Redis (device-rate-limiter.ts): the take is atomic
 * with the enqueue and costs no round trip of its own.
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
   * With the bucket's level after the take and Redis's clock (ms) then, once the MULTI ran; with
   * undefined when the take did not run (the MULTI failed or was never sent). Only the first call
   * counts: the enqueuer settles what it was handed from every way out (the MULTI's answer, its
   * failure, a batch never sent), so an implementation ignores the calls after the first.
   */
  settle(reading: { level: number; at: number } | undefined): void
}

/**
 * Takes unconditionally: inside a MULTI the batch is queued whatever the script answers, so it
 * cannot refuse, and may leave a bucket in debt (a negative level), which refuses the device until
 * it has refilled (the pre-check's script counts from the same level). KEYS: the buckets; ARGV[1]: a
 * JSON array of rate, burst and cost per bucket. Answers {levels after (floored), now}.
 */
const MULTI_TAKE_SCRIPT = `${READ_LEVEL_LUA}
local args = cjson.decode(ARGV[1])
local levels = {}
for i = 1, #KEYS do
  local rate, burst, cost = args[3 * i - 2], args[3 * i - 1], args[3 * i]
  local left = level_of(KEYS[i], rate, burst, now) - cost
  write_level(KEYS[i], left, rate, burst, now)
  levels[i] = math.floor(left)
end
return {levels, now}
`

const COMMAND = 'iotflowTakeInMulti'

type Reply = [number[], number]
type MultiWithTake = ChainableCommander & {
  [COMMAND](keyCount: number, ...keysAndArgs: string[]): ChainableCommander
}
type ConnectionWithTake = RedisConnection & {
  [COMMAND](keyCount: number, ...keysAndArgs: string[]): Promise<Reply>
}

/**
 * Defines the script on a connection: ioredis copies a connection's scripts into each MULTI made
 * from it afterwards, and sends a script as EVAL the first time on each socket (EVALSHA after), so
 * it is loaded on whichever server (or cluster node) the MULTI reaches.
 */
export function defineMultiTake(redis: RedisConnection): void {
  if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { lua: MULTI_TAKE_SCRIPT })
}

/**
 * The script's keys and argument: one bucket per device however many of its takes the MULTI
 * carries (their costs summed, the latest limit's rate and burst), and each take's bucket index.
 */
function keysAndArgs(takes: readonly MultiTake[]): { keysAndArg: string[]; bucketOf: number[] } {
  const buckets = new Map<string, { index: number; perSecond: number; burst: number; cost: number }>()
  const bucketOf = takes.map((take) => {
    const bucket = buckets.get(take.key)
    if (!bucket) {
      const index = buckets.size
      buckets.set(take.key, { index, perSecond: take.perSecond, burst: take.burst, cost: take.cost })
      return index
    }
    Object.assign(bucket, { perSecond: take.perSecond, burst: take.burst, cost: bucket.cost + take.cost })
    return bucket.index
  })
  const args = [...buckets.values()].flatMap((bucket) => [bucket.perSecond, bucket.burst, bucket.cost])
  return { keysAndArg: [...buckets.keys(), JSON.stringify(args)], bucketOf }
}

/** Settles each take from the script's reply (its bucket's level); undefined when it did not run. */
function settleFrom(takes: readonly MultiTake[], bucketOf: number[], reply: Reply | undefined) {
  takes.forEach((take, i) => {
    const level = reply?.[0]?.[bucketOf[i] as number]
    take.settle(level === undefined ? undefined : { level: Number(level), at: Number(reply?.[1]) })
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
  const { keysAndArg, bucketOf } = keysAndArgs(takes)
  const keyCount = keysAndArg.length - 1
  ;(multi as MultiWithTake)[COMMAND](keyCount, ...keysAndArg)
  const answerIndex = multi.length - 2
  const exec = multi.exec.bind(multi)
  let settled = false
  multi.exec = ((callback?: Parameters<typeof exec>[0]) => {
    const running = exec(callback)
    if (!settled) {
      settled = true
      running.then(
        (answers) => {
          const [error, reply] = answers?.[answerIndex] ?? [new Error('no answer'), undefined]
          if (!error) return settleFrom(takes, bucketOf, reply as Reply)
          settleFrom(takes, bucketOf, undefined)
          ;(redis as ConnectionWithTake)[COMMAND](keyCount, ...keysAndArg).catch(() => {})
        },
        () => settleFrom(takes, bucketOf, undefined),
      )
    }
    return running
  }) as typeof multi.exec
}
