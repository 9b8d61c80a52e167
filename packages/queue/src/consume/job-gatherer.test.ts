import { describe, expect, it } from 'vitest'
import { type GatheredItem, JobGatherer } from './job-gatherer.js'

const item = (id: string, points = 1): GatheredItem<string> => ({ id, points, value: id })

describe('JobGatherer', () => {
  it('writes jobs that arrive together as one batch after the linger time', async () => {
    const writes: string[][] = []
    const gatherer = new JobGatherer<string>(
      async (items) => {
        writes.push(items.map((i) => i.value))
        return undefined
      },
      { maxPoints: 1000, lingerMs: 20, maxInFlight: 2 },
    )
    await Promise.all(['a', 'b', 'c'].map((id) => gatherer.add(item(id))))
    expect(writes).toEqual([['a', 'b', 'c']])
  })

  it('writes at once when the batch reaches its point limit', async () => {
    const writes: string[][] = []
    const gatherer = new JobGatherer<string>(
      async (items) => {
        writes.push(items.map((i) => i.value))
        return undefined
      },
      { maxPoints: 10, lingerMs: 60_000, maxInFlight: 2 },
    )
    await Promise.all([gatherer.add(item('a', 4)), gatherer.add(item('b', 6)), gatherer.add(item('c', 10))])
    expect(writes).toEqual([['a', 'b'], ['c']])
  })

  it('settles each job with the outcome of the write that carried it', async () => {
    const gatherer = new JobGatherer<string>(
      async (items) => {
        if (items.some((i) => i.id === 'boom')) throw new Error('store down')
        return new Map([['poison', new Error('refused')]])
      },
      { maxPoints: 2, lingerMs: 5, maxInFlight: 2 },
    )
    const [good, poison] = await Promise.allSettled([
      gatherer.add(item('good')),
      gatherer.add(item('poison')),
    ])
    expect(good.status).toBe('fulfilled')
    expect(poison).toMatchObject({ status: 'rejected', reason: { message: 'refused' } })
    await expect(gatherer.add(item('boom'))).rejects.toThrow('store down')
  })

  it('drain writes what is waiting without waiting for the linger time', async () => {
    let written = 0
    const gatherer = new JobGatherer<string>(
      async (items) => {
        written += items.length
        return undefined
      },
      { maxPoints: 1000, lingerMs: 60_000, maxInFlight: 2 },
    )
    const pending = gatherer.add(item('a'))
    await gatherer.drain()
    await pending
    expect(written).toBe(1)
  })

  it('runs at most maxInFlight writes at once, gathering newcomers into the next batch', async () => {
    const writes: string[][] = []
    let release: () => void = () => {}
    const firstWrite = new Promise<void>((resolve) => {
      release = resolve
    })
    const gatherer = new JobGatherer<string>(
      async (items) => {
        writes.push(items.map((i) => i.value))
        if (writes.length === 1) await firstWrite
        return undefined
      },
      { maxPoints: 2, lingerMs: 1, maxInFlight: 1 },
    )
    const first = [gatherer.add(item('a')), gatherer.add(item('b'))]
    await new Promise((resolve) => setTimeout(resolve, 20))
    const second = [gatherer.add(item('c')), gatherer.add(item('d')), gatherer.add(item('e'))]
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(writes).toEqual([['a', 'b']])
    release()
    await Promise.all([...first, ...second])
    expect(writes).toEqual([['a', 'b'], ['c', 'd'], ['e']])
  })

  it('hands back the jobs still waiting and lets the write already running finish', async () => {
    const writes: string[][] = []
    let release: () => void = () => {}
    const running = new Promise<void>((resolve) => {
      release = resolve
    })
    const gatherer = new JobGatherer<string>(
      async (items) => {
        writes.push(items.map((i) => i.value))
        await running
        return undefined
      },
      { maxPoints: 1, lingerMs: 60_000, maxInFlight: 1 },
    )
    const inFlight = gatherer.add(item('a'))
    const waiting = [gatherer.add(item('b')), gatherer.add(item('c'))]
    expect(gatherer.handBack(new Error('shutting down'))).toBe(2)
    const outcomes = await Promise.allSettled(waiting)
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected'])
    release()
    await expect(inFlight).resolves.toBeUndefined()
    await gatherer.drain()
    expect(writes).toEqual([['a']])
  })
})
