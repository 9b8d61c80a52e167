import type { Redis } from 'ioredis'
import { bullPrefix } from './catalog.js'

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
 * Token buckets in Redis, shared by every gateway and bridge: one script call takes from all the
 * given buckets, or from none when any lacks tokens (then it says how long until all have them).
 * Redis's own clock refills them, so instances with skewed clocks agree. A bucket's key expires once
 * it would be full again, so an idle sender costs no memory.
 */
const TAKE_SCRIPT = `
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local levels = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[3 * i - 2])
  local burst = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = burst
  if state[1] then
    local elapsed = math.max(0, now - tonumber(state[2]))
    tokens = math.min(burst, tonumber(state[1]) + elapsed * rate / 1000)
  end
  levels[i] = tokens
  if tokens < cost then wait = math.max(wait, math.ceil((cost - tokens) * 1000 / rate)) end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[3 * i - 2])
  local burst = tonumber(ARGV[3 * i - 1])
  local left = levels[i] - tonumber(ARGV[3 * i])
  redis.call('HSET', key, 'tokens', left, 'at', now)
  redis.call('PEXPIRE', key, math.ceil((burst - left) * 1000 / rate) + 1000)
end
return 0
`

const COMMAND = 'iotflowTakeTokens'

type WithTakeCommand = Redis & {
  [COMMAND](keyCount: number, ...keysAndArgs: (string | number)[]): Promise<number>
}

/**
 * Buckets of one kind (`kind` names them: `device`, `registration`) under the queue prefix's hash
 * tag, so that one call over several buckets stays in one Redis Cluster slot.
 */
export function createTokenBuckets(redis: Redis, queuePrefix: string, kind: string) {
  if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { lua: TAKE_SCRIPT })
  const keyPrefix = `${bullPrefix(queuePrefix)}:rate:${kind}:`
  return {
    /** Takes `cost` tokens from every bucket given, atomically; none when one of them lacks tokens. */
    async take(takes: readonly BucketTake[]): Promise<TakeResult> {
      if (takes.length === 0) return { ok: true }
      const keys = takes.map((take) => keyPrefix + take.name)
      const args = takes.flatMap((take) => [take.perSecond, take.burst, take.cost])
      const waitMs = await (redis as WithTakeCommand)[COMMAND](keys.length, ...keys, ...args)
      return waitMs === 0 ? { ok: true } : { ok: false, retryAfterMs: waitMs }
    },
  }
}

export type TokenBuckets = ReturnType<typeof createTokenBuckets>
