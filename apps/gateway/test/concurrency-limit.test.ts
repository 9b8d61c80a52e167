import { describe, expect, it } from 'vitest'
import { createConcurrencyLimit } from '../src/lib/concurrency-limit.js'

describe('createConcurrencyLimit', () => {
  it('lets `max` in at once, queues `maxWaiting` in order, and refuses the rest at once', async () => {
    const limit = createConcurrencyLimit(2, 2)
    const first = await limit.acquire()
    const second = await limit.acquire()
    expect(first).toBeTypeOf('function')
    expect(second).toBeTypeOf('function')
    const order: string[] = []
    const third = limit.acquire().then((release) => {
      order.push('third')
      return release
    })
    const fourth = limit.acquire().then((release) => {
      order.push('fourth')
      return release
    })
    expect(await limit.acquire()).toBeUndefined()
    expect([limit.active, limit.waiting]).toEqual([2, 2])

    first?.()
    first?.() // a second release of the same slot frees nothing more
    const releaseThird = await third
    expect(order).toEqual(['third'])
    expect([limit.active, limit.waiting]).toEqual([2, 1])
    second?.()
    const releaseFourth = await fourth
    expect(order).toEqual(['third', 'fourth'])
    releaseThird?.()
    releaseFourth?.()
    expect([limit.active, limit.waiting]).toEqual([0, 0])
    expect(await limit.acquire()).toBeTypeOf('function')
  })
})
