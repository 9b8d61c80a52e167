import { setTimeout as sleep } from 'node:timers/promises'
import { useTestRedis } from '@iotflow/testkit/use-test-redis'
import { describe, expect, it, vi } from 'vitest'
import { createTokenBuckets } from './token-buckets.js'

const test = useTestRedis('buckets')

describe('token buckets in Redis', () => {
  it('takes from a full bucket, refuses past it with the wait until enough tokens, and refills', async () => {
    const buckets = createTokenBuckets(test.redis(), test.prefix, 'device')
    const take = (cost: number) => buckets.take([{ name: '1', perSecond: 10, burst: 5, cost }])
    expect(await take(4)).toEqual({ ok: true })
    const refused = await take(3)
    expect(refused.ok).toBe(false)
    // 1 token left, 2 more needed at 10 a second: at most 200 ms (less as time passes).
    expect(refused.ok === false && refused.retryAfterMs).toBeGreaterThan(0)
    expect(refused.ok === false && refused.retryAfterMs).toBeLessThanOrEqual(200)
    await sleep(250)
    expect(await take(3)).toEqual({ ok: true })
  })

  it('takes from several buckets at once or from none, and one bucket from two instances is one bucket', async () => {
    const one = createTokenBuckets(test.redis(), test.prefix, 'device')
    const other = createTokenBuckets(test.redis(), test.prefix, 'device')
    const pair = (a: number, b: number) => [
      { name: 'a', perSecond: 0.001, burst: 10, cost: a },
      { name: 'b', perSecond: 0.001, burst: 10, cost: b },
    ]
    expect(await one.take(pair(6, 9))).toEqual({ ok: true })
    expect((await other.take(pair(1, 2))).ok).toBe(false) // b lacks a token: a keeps its 4
    expect(await other.take(pair(4, 1))).toEqual({ ok: true })
    expect((await one.take(pair(1, 0))).ok).toBe(false)
  })

  it('decides takes asked for together one by one, as if each were alone', async () => {
    const buckets = createTokenBuckets(test.redis(), test.prefix, 'together')
    const take = (name: string) => buckets.take([{ name, perSecond: 0.001, burst: 5, cost: 2 }])
    // Asked in one turn of the event loop: one script call, each take still on its own.
    const results = await Promise.all([...Array.from({ length: 4 }, () => take('p')), take('q'), take('q')])
    expect(results.map((r) => r.ok)).toEqual([true, true, false, false, true, true])
  })

  it('gathers the takes asked for over consecutive turns of the event loop into one script call', async () => {
    const redis = test.redis()
    // The take script's calls: those naming a bucket of `kind`.
    const sent = vi.spyOn(redis, 'sendCommand')
    const takeCalls = (kind: string) =>
      sent.mock.calls.filter(([command]) =>
        command.args.some((arg) => typeof arg === 'string' && arg.includes(`:bucket:${kind}:`)),
      ).length
    // One take a turn, as requests reach the check. A linger far above a turn, so a busy machine
    // cannot make it close early; without one, the first take goes alone.
    const threeTakes = async (kind: string, lingerMs: number) => {
      const buckets = createTokenBuckets(redis, test.prefix, kind, { lingerMs })
      const takes: Promise<unknown>[] = []
      for (let i = 0; i < 3; i++) {
        takes.push(buckets.take([{ name: String(i), perSecond: 1000, burst: 1000, cost: 1 }]))
        await new Promise(setImmediate)
      }
      expect(await Promise.all(takes)).toEqual([{ ok: true }, { ok: true }, { ok: true }])
    }
    try {
      await threeTakes('lingering', 50)
      expect(takeCalls('lingering')).toBe(1)
      await threeTakes('eager', 0)
      expect(takeCalls('eager')).toBeGreaterThan(1)
    } finally {
      sent.mockRestore()
    }
  })

  it('lets the key of a bucket expire once it would be full again, so idle senders cost nothing', async () => {
    const buckets = createTokenBuckets(test.redis(), test.prefix, 'idle')
    await buckets.take([{ name: 'x', perSecond: 1000, burst: 1000, cost: 500 }])
    const ttl = await test.redis().pttl(`{${test.prefix}}:bucket:idle:x`)
    // 500 ms to refill, plus a second of slack.
    expect(ttl).toBeGreaterThan(1000)
    expect(ttl).toBeLessThanOrEqual(1500)
  })
})
