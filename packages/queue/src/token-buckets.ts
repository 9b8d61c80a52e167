import { bullPrefix } from './catalog.js'
import type { RedisConnection } from './connection.js'

/** One bucket to take from: refilled at `perSecond` tokens a second, holding at most `burst`. */
export interface BucketTake {
  /** Names the bucket within its kind, e.g. a device id or a client address. */
  name: string
  perSecond: number
  burst: number
  cost: number
}

export type TakeResult = { ok: true } | { ok: false; retryAfterMs: number }

/**
 * Token buckets in Redis, shared by every gateway and bridge. The script decides a list of takes,
 * each over one or more buckets: a take gets tokens from all of its buckets, or from none when one
 * lacks them (its answer is then the wait in ms until all have them; 0 when taken). Redis's own
 * clock refills the buckets, so instances with skewed clocks agree. A bucket's key expires once it
 * would be full again, so an idle sender costs no memory.
 * ARGV: per take, its bucket count n, then rate, burst and cost of each of its n buckets (KEYS in order).
 */
const TAKE_SCRIPT = `
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local answers = {}
local k = 0
local a = 1
while a <= #ARGV do
  local n = tonumber(ARGV[a])
  local levels = {}
  local wait = 0
  for i = 1, n do
    local rate = tonumber(ARGV[a + 3 * i - 2])
    local burst = tonumber(ARGV[a + 3 * i - 1])
    local cost = tonumber(ARGV[a + 3 * i])
    local state = redis.call('HMGET', KEYS[k + i], 'tokens', 'at')
    local tokens = burst
    if state[1] then
      local elapsed = math.max(0, now - tonumber(state[2]))
      tokens = math.min(burst, tonumber(state[1]) + elapsed * rate / 1000)
    end
    levels[i] = tokens
    if tokens < cost then wait = math.max(wait, math.ceil((cost - tokens) * 1000 / rate)) end
  end
  if wait == 0 then
    for i = 1, n do
      local rate = tonumber(ARGV[a + 3 * i - 2])
      local burst = tonumber(ARGV[a + 3 * i - 1])
      local left = levels[i] - tonumber(ARGV[a + 3 * i])
      redis.call('HSET', KEYS[k + i], 'tokens', left, 'at', now)
      redis.call('PEXPIRE', KEYS[k + i], math.ceil((burst - left) * 1000 / rate) + 1000)
    end
  end
  answers[#answers + 1] = wait
  k = k + n
  a = a + 1 + 3 * n
end
return answers
`

const COMMAND = 'iotflowTakeTokens'
/** Takes decided by one script call at most; more wait for the next. */
const MAX_TAKES_PER_CALL = 1000

type WithTakeCommand = RedisConnection & {
  [COMMAND](keyCount: number, ...keysAndArgs: (string | number)[]): Promise<number[]>
}

interface PendingTake {
  takes: readonly BucketTake[]
  resolve(result: TakeResult): void
  reject(error: unknown): void
}

/**
 * Buckets of one kind (`kind` names them: `device`, `registration`) under the queue prefix's hash
 * tag, so that one call over several buckets stays in one Redis Cluster slot. The takes asked for
 * in one turn of the event loop go to Redis in one script call (each still decided on its own, in
 * one atomic step), so the check costs a request a share of a round trip, not a round trip.
 */
export function createTokenBuckets(redis: RedisConnection, queuePrefix: string, kind: string) {
  if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { lua: TAKE_SCRIPT })
  const keyPrefix = `${bullPrefix(queuePrefix)}:rate:${kind}:`
  let pending: PendingTake[] = []
  let scheduled = false

  function send() {
    scheduled = false
    const batch = pending.slice(0, MAX_TAKES_PER_CALL)
    pending = pending.slice(batch.length)
    if (pending.length > 0) schedule()
    const keys: string[] = []
    const args: number[] = []
    for (const { takes } of batch) {
      args.push(takes.length)
      for (const take of takes) {
        keys.push(keyPrefix + take.name)
        args.push(take.perSecond, take.burst, take.cost)
      }
    }
    ;(redis as WithTakeCommand)[COMMAND](keys.length, ...keys, ...args).then(
      (waits) =>
        batch.forEach((take, i) => {
          const waitMs = Number(waits[i])
          take.resolve(waitMs === 0 ? { ok: true } : { ok: false, retryAfterMs: waitMs })
        }),
      (error: unknown) => {
        for (const take of batch) take.reject(error)
      },
    )
  }

  function schedule() {
    if (scheduled) return
    scheduled = true
    setImmediate(send)
  }

  return {
    /** Takes `cost` tokens from every bucket given, atomically; none when one of them lacks tokens. */
    take(takes: readonly BucketTake[]): Promise<TakeResult> {
      if (takes.length === 0) return Promise.resolve({ ok: true })
      return new Promise((resolve, reject) => {
        pending.push({ takes, resolve, reject })
        schedule()
      })
    },
  }
}

export type TokenBuckets = ReturnType<typeof createTokenBuckets>
