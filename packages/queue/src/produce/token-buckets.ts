import { bullPrefix } from '../catalog.js'
import { groupedBy } from '../grouped-by.js'
import type { RedisConnection } from '../redis/connection.js'

/** One bucket to take from: refilled at `perSecond` tokens a second, holding at most `burst`. */
export interface BucketTake {
  /** Names the bucket within its kind, e.g. a device id or a client address. */
  name: string
  perSecond: number
  burst: number
  /** Negative: tokens given back (capped at the burst), e.g. a take undone. */
  cost: number
  /**
   * Tokens that must be left besides `cost` for the take to pass (not taken): what the caller has
   * already admitted on its own but not yet taken in Redis (device-rate-limiter.ts). Default 0.
   */
  reserve?: number
}

export type TakeResult = { ok: true } | { ok: false; retryAfterMs: number }

/**
 * A take's result with what Redis saw: each bucket's level after it (floored; what is left when
 * refused) and Redis's clock in ms then, which orders the levels read by different calls.
 */
export type TakeReading = TakeResult & { levels: number[]; at: number }

/**
 * Lua that sets `tokens` to the level of bucket KEYS[key] at `now` (ms), refilled at `rate` up to
 * `burst`: a bucket is one string, "<tokens> <ms>" (possibly negative: see multi-take.ts), read
 * with GET. Shared with the take inside the group commit's MULTI.
 */
export const READ_LEVEL_LUA = `
local function level_of(key, rate, burst, now)
  local state = redis.call('GET', key)
  if not state then return burst end
  local sep = string.find(state, ' ', 1, true)
  local tokens = tonumber(string.sub(state, 1, sep - 1))
  local elapsed = now - tonumber(string.sub(state, sep + 1))
  if elapsed > 0 then tokens = tokens + elapsed * rate / 1000 end
  -- Capped even with no time elapsed: a limit just lowered holds at most its new burst.
  if tokens > burst then tokens = burst end
  return tokens
end
local function write_level(key, left, rate, burst, now)
  redis.call('SET', key, left .. ' ' .. now, 'PX', math.ceil((burst - left) * 1000 / rate) + 1000)
end
local now_parts = redis.call('TIME')
local now = now_parts[1] * 1000 + math.floor(now_parts[2] / 1000)
`

/** The key of bucket `name` of `kind` under a queue prefix's hash tag. */
export const bucketKey = (queuePrefix: string, kind: string, name: string) =>
  `${bullPrefix(queuePrefix)}:bucket:${kind}:${name}`

/**
 * Token buckets in Redis, shared by every gateway and bridge. The script decides a list of takes,
 * each over one or more buckets: a take gets tokens from all of its buckets, or from none when one
 * lacks them (its answer is then the wait in ms until all have them; 0 when taken). Redis's own
 * clock refills the buckets, so instances with skewed clocks agree. A bucket's key expires once it
 * would be full again, so an idle sender costs no memory. A bucket is one string, "<tokens> <ms>",
 * read with GET and written with one SET PX: a hash needed three calls, the dearest part of the script.
 * ARGV[1]: a JSON array (cjson decodes it in C, cheaper than one argument per number): per take, its
 * bucket count n, then rate, burst, cost and reserve of each of its n buckets (KEYS in order).
 * Answers {waits, levels (each bucket's after its take, floored), now}.
 */
const TAKE_SCRIPT = `${READ_LEVEL_LUA}
local args = cjson.decode(ARGV[1])
local answers = {}
local levels = {}
local tokens_of = {}
local k = 0
local a = 1
while a <= #args do
  local n = args[a]
  local wait = 0
  for i = 1, n do
    local at = a + 4 * i
    local rate, burst, cost, reserve = args[at - 3], args[at - 2], args[at - 1], args[at]
    local tokens = level_of(KEYS[k + i], rate, burst, now)
    tokens_of[i] = tokens
    if cost > 0 and tokens < cost + reserve then
      local w = math.ceil((cost + reserve - tokens) * 1000 / rate)
      if w > wait then wait = w end
    end
  end
  for i = 1, n do
    local at = a + 4 * i
    local left = tokens_of[i]
    if wait == 0 then
      local rate, burst = args[at - 3], args[at - 2]
      left = left - args[at - 1]
      if left > burst then left = burst end
      write_level(KEYS[k + i], left, rate, burst, now)
    end
    levels[#levels + 1] = math.floor(left)
  end
  answers[#answers + 1] = wait
  k = k + n
  a = a + 1 + 4 * n
end
return {answers, levels, now}
`

/**
 * Takes unconditionally: a take that cannot refuse, for tokens already spent. Inside a MULTI the
 * batch is queued whatever the script answers (multi-take.ts), and points a device was admitted for
 * and whose batches are queued are owed (device-rate-limiter.ts): either may leave a bucket in debt
 * (a negative level), which refuses the device until it has refilled (TAKE_SCRIPT counts from the
 * same level). KEYS: the buckets, each once; ARGV[1]: a JSON array of rate, burst and cost per
 * bucket. Answers {levels after (floored), now}.
 */
const UNCONDITIONAL_TAKE_SCRIPT = `${READ_LEVEL_LUA}
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

export const UNCONDITIONAL_TAKE_COMMAND = 'iotflowTakeInMulti'

/** The unconditional take's answer: each bucket's level after it, and Redis's clock (ms). */
export type UnconditionalTakeReply = [number[], number]

/** One bucket's unconditional take: its key, its limit, the tokens taken. */
export interface UnconditionalTake {
  key: string
  perSecond: number
  burst: number
  cost: number
}

type ConnectionWithUnconditionalTake = RedisConnection & {
  [UNCONDITIONAL_TAKE_COMMAND](keyCount: number, ...keysAndArgs: string[]): Promise<UnconditionalTakeReply>
}

/**
 * Defines the unconditional take on a connection: ioredis copies a connection's scripts into each
 * MULTI made from it afterwards, and sends a script as EVAL the first time on each socket (EVALSHA
 * after), so it is loaded on whichever server (or cluster node) a call or MULTI reaches.
 */
export function defineUnconditionalTake(redis: RedisConnection): void {
  if (!(UNCONDITIONAL_TAKE_COMMAND in redis))
    redis.defineCommand(UNCONDITIONAL_TAKE_COMMAND, { lua: UNCONDITIONAL_TAKE_SCRIPT })
}

/** The script's keys and its one argument, for buckets each given once. */
export function unconditionalTakeArgs(takes: readonly UnconditionalTake[]): string[] {
  const args: number[] = []
  for (const take of takes) args.push(take.perSecond, take.burst, take.cost)
  return [...takes.map((take) => take.key), JSON.stringify(args)]
}

/**
 * The unconditional take as a call of its own (not in a MULTI), on a connection it is defined on;
 * the buckets (each given once) must share a hash slot. Answers each level after, and Redis's clock.
 */
export async function takeUnconditionally(
  redis: RedisConnection,
  takes: readonly UnconditionalTake[],
): Promise<{ levels: number[]; at: number }> {
  const [levels, at] = await (redis as ConnectionWithUnconditionalTake)[UNCONDITIONAL_TAKE_COMMAND](
    takes.length,
    ...unconditionalTakeArgs(takes),
  )
  return { levels: levels.map(Number), at: Number(at) }
}

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
  [COMMAND](keyCount: number, ...keysAndArgs: (string | number)[]): Promise<[number[], number[], number]>
}

interface PendingTake {
  takes: readonly BucketTake[]
  /** The queue prefix of every bucket of the take: one call per prefix (one cluster slot). */
  queuePrefix: string
  resolve(result: TakeReading): void
  reject(error: unknown): void
}

/**
 * Buckets of one kind (`kind` names them: `device`, `registration`) under a queue prefix's hash
 * tag: `queuePrefix`, or per bucket name when a function (device buckets live in their device's
 * queue partition, so that the group commit's MULTI can take from them: multi-take.ts). The takes
 * asked for within `lingerMs` (TAKE_LINGER_MS) of the first, or while the previous call is out, go
 * to Redis in one script call per prefix (each still decided on its own, in one atomic step), so the
 * check costs a request a share of a script call, not a call. One take's buckets must share a prefix.
 */
export function createTokenBuckets(
  redis: RedisConnection,
  queuePrefix: string | ((name: string) => string),
  kind: string,
  { lingerMs = TAKE_LINGER_MS }: { lingerMs?: number } = {},
) {
  if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { lua: TAKE_SCRIPT })
  defineUnconditionalTake(redis)
  const prefixOf = typeof queuePrefix === 'string' ? () => queuePrefix : queuePrefix
  const keyOf = (name: string) => bucketKey(prefixOf(name), kind, name)
  let pending: PendingTake[] = []
  let scheduled = false
  let inFlight = 0

  function send() {
    scheduled = false
    if (inFlight >= MAX_CALLS_IN_FLIGHT) return
    inFlight++
    const batch = pending.slice(0, MAX_TAKES_PER_CALL)
    pending = pending.slice(batch.length)
    const byPrefix = groupedBy(batch, (take) => take.queuePrefix)
    Promise.allSettled([...byPrefix.values()].map(call)).then(called, called)
  }

  /** One script call for takes whose buckets share a prefix. */
  async function call(group: PendingTake[]) {
    const keys: string[] = []
    const args: number[] = []
    for (const { takes } of group) {
      args.push(takes.length)
      for (const take of takes) {
        keys.push(keyOf(take.name))
        args.push(take.perSecond, take.burst, take.cost, take.reserve ?? 0)
      }
    }
    keys.push(JSON.stringify(args))
    try {
      const [waits, levels, at] = await (redis as WithTakeCommand)[COMMAND](keys.length - 1, ...keys)
      let level = 0
      group.forEach((take, i) => {
        const waitMs = Number(waits[i])
        const own = levels.slice(level, level + take.takes.length).map(Number)
        level += take.takes.length
        const result: TakeResult = waitMs === 0 ? { ok: true } : { ok: false, retryAfterMs: waitMs }
        take.resolve({ ...result, levels: own, at: Number(at) })
      })
    } catch (error) {
      for (const take of group) take.reject(error)
    }
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

  /** Takes, with what Redis saw of each bucket. */
  function takeReading(takes: readonly BucketTake[]): Promise<TakeReading> {
    if (takes.length === 0) return Promise.resolve({ ok: true, levels: [], at: 0 })
    const prefixes = new Set(takes.map((take) => prefixOf(take.name)))
    if (prefixes.size > 1)
      return Promise.reject(new Error('one take spans buckets of several queue prefixes (hash slots)'))
    return new Promise((resolve, reject) => {
      pending.push({ takes, queuePrefix: [...prefixes][0] as string, resolve, reject })
      schedule(lingerMs)
    })
  }

  return {
    /** Takes `cost` tokens from every bucket given, atomically; none when one of them lacks tokens. */
    async take(takes: readonly BucketTake[]): Promise<TakeResult> {
      const { levels: _, at: __, ...result } = await takeReading(takes)
      return result
    },
    takeReading,
    /**
     * Takes tokens already spent, which no bucket can refuse (it may go into debt), in one call: the
     * buckets (each named once) must share a queue prefix. Answers each level after, as takeReading.
     */
    takeUnconditionally: (takes: readonly (Omit<UnconditionalTake, 'key'> & { name: string })[]) =>
      takeUnconditionally(
        redis,
        takes.map(({ name, ...take }) => ({ key: keyOf(name), ...take })),
      ),
    /** The Redis key of bucket `name`: where a take inside another MULTI must look (multi-take.ts). */
    keyOf,
    /** The queue prefix (hash tag) bucket `name` lives under. */
    prefixOf,
  }
}

export type TokenBuckets = ReturnType<typeof createTokenBuckets>
