import { bullPrefix } from '../catalog.js'
import type { RedisConnection } from '../redis/connection.js'

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
 * would be full again, so an idle sender costs no memory. A bucket is one string, "<tokens> <ms>",
 * read with GET and written with one SET PX: a hash needed three calls, the dearest part of the script.
 * ARGV[1]: a JSON array (cjson decodes it in C, cheaper than one argument per number): per take, its
 * bucket count n, then rate, burst and cost of each of its n buckets (KEYS in order).
 */
const TAKE_SCRIPT = `
local now_parts = redis.call('TIME')
local now = now_parts[1] * 1000 + math.floor(now_parts[2] / 1000)
local args = cjson.decode(ARGV[1])
local answers = {}
local levels = {}
local k = 0
local a = 1
while a <= #args do
  local n = args[a]
  local wait = 0
  for i = 1, n do
    local at = a + 3 * i
    local rate, burst, cost = args[at - 2], args[at - 1], args[at]
    local tokens = burst
    local state = redis.call('GET', KEYS[k + i])
    if state then
      local sep = string.find(state, ' ', 1, true)
      local elapsed = now - tonumber(string.sub(state, sep + 1))
      if elapsed > 0 then
        tokens = tonumber(string.sub(state, 1, sep - 1)) + elapsed * rate / 1000
        if tokens > burst then tokens = burst end
      else
        tokens = tonumber(string.sub(state, 1, sep - 1))
      end
    end
    levels[i] = tokens
    if tokens < cost then
      local w = math.ceil((cost - tokens) * 1000 / rate)
      if w > wait then wait = w end
    end
  end
  if wait == 0 then
    for i = 1, n do
      local at = a + 3 * i
      local rate, burst = args[at - 2], args[at - 1]
      local left = levels[i] - args[at]
      redis.call('SET', KEYS[k + i], left .. ' ' .. now, 'PX', math.ceil((burst - left) * 1000 / rate) + 1000)
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
/**
 * Script calls awaiting Redis at once: takes asked for meanwhile go together in the next call, so
 * under load one call carries many takes (each call costs Redis and the caller a fixed share).
 */
const MAX_CALLS_IN_FLIGHT = 1
/**
 * How long the first take of a call waits for others: requests reach the check spread over the event
 * loop's turns, and a call costs Redis about as much for one take as for dozens (the script's setup,
 * its effects written to the AOF). Well within the group commit's linger, which the ingest path's
 * check overlaps (ingest-service.ts), so it seldom adds to a request's wait.
 */
const TAKE_LINGER_MS = 1

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
 * within `lingerMs` (TAKE_LINGER_MS) of the first, or while the previous call is out, go to Redis
 * in one script call (each still decided on its own, in one atomic step), so the check costs a
 * request a share of a script call, not a call.
 */
export function createTokenBuckets(
  redis: RedisConnection,
  queuePrefix: string,
  kind: string,
  { lingerMs = TAKE_LINGER_MS }: { lingerMs?: number } = {},
) {
  if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { lua: TAKE_SCRIPT })
  const keyPrefix = `${bullPrefix(queuePrefix)}:bucket:${kind}:`
  let pending: PendingTake[] = []
  let scheduled = false
  let inFlight = 0

  function send() {
    scheduled = false
    if (inFlight >= MAX_CALLS_IN_FLIGHT) return
    inFlight++
    const batch = pending.slice(0, MAX_TAKES_PER_CALL)
    pending = pending.slice(batch.length)
    const keys: string[] = []
    const args: number[] = []
    for (const { takes } of batch) {
      args.push(takes.length)
      for (const take of takes) {
        keys.push(keyPrefix + take.name)
        args.push(take.perSecond, take.burst, take.cost)
      }
    }
    keys.push(JSON.stringify(args))
    ;(redis as WithTakeCommand)[COMMAND](keys.length - 1, ...keys).then(
      (waits) => {
        called()
        batch.forEach((take, i) => {
          const waitMs = Number(waits[i])
          take.resolve(waitMs === 0 ? { ok: true } : { ok: false, retryAfterMs: waitMs })
        })
      },
      (error: unknown) => {
        called()
        for (const take of batch) take.reject(error)
      },
    )
  }

  function called() {
    inFlight--
    // These takes have waited for the call out already: they go at once.
    if (pending.length > 0) schedule(0)
  }

  function schedule(delayMs: number) {
    if (scheduled) return
    scheduled = true
    if (delayMs > 0) setTimeout(send, delayMs)
    else setImmediate(send)
  }

  return {
    /** Takes `cost` tokens from every bucket given, atomically; none when one of them lacks tokens. */
    take(takes: readonly BucketTake[]): Promise<TakeResult> {
      if (takes.length === 0) return Promise.resolve({ ok: true })
      return new Promise((resolve, reject) => {
        pending.push({ takes, resolve, reject })
        schedule(lingerMs)
      })
    },
  }
}

export type TokenBuckets = ReturnType<typeof createTokenBuckets>
