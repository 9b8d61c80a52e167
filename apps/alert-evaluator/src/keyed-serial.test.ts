import { describe, expect, it } from 'vitest'
import { keyedSerial } from './keyed-serial.js'

/** A task that records its start and end, and ends when `finish` is called. */
function recorder() {
  const events: string[] = []
  const finishers = new Map<string, () => void>()
  const task = (name: string) => () => {
    events.push(`start ${name}`)
    return new Promise<string>((resolve) => {
      finishers.set(name, () => {
        events.push(`end ${name}`)
        resolve(name)
      })
    })
  }
  const finish = async (name: string) => {
    finishers.get(name)?.()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return { events, task, finish }
}

const tick = () => new Promise((resolve) => setImmediate(resolve))

describe('keyedSerial', () => {
  it('runs the tasks of one key one after another, in the order handed in, and other keys at once', async () => {
    const run = keyedSerial()
    const { events, task, finish } = recorder()
    const first = run(['a'], task('a1'))
    const second = run(['a'], task('a2'))
    const other = run(['b'], task('b1'))
    await tick()
    expect(events).toEqual(['start a1', 'start b1'])
    await finish('a1')
    expect(events).toEqual(['start a1', 'start b1', 'end a1', 'start a2'])
    await finish('a2')
    await finish('b1')
    expect(await Promise.all([first, second, other])).toEqual(['a1', 'a2', 'b1'])
  })

  it('holds a task with several keys until the earlier tasks of each have ended, and the later ones behind it', async () => {
    const run = keyedSerial()
    const { events, task, finish } = recorder()
    void run(['a'], task('a1'))
    void run(['b'], task('b1'))
    const both = run(['a', 'b'], task('ab'))
    void run(['b'], task('b2'))
    await tick()
    expect(events).toEqual(['start a1', 'start b1'])
    await finish('a1')
    expect(events).not.toContain('start ab')
    await finish('b1')
    expect(events.slice(-1)).toEqual(['start ab'])
    await finish('ab')
    expect(events.slice(-2)).toEqual(['end ab', 'start b2'])
    await finish('b2')
    expect(await both).toBe('ab')
  })

  it('goes on with the next task of a key when one fails', async () => {
    const run = keyedSerial()
    const failed = run(['a'], () => Promise.reject(new Error('refused')))
    await expect(failed).rejects.toThrow('refused')
    expect(await run(['a'], async () => 'next')).toBe('next')
  })
})
