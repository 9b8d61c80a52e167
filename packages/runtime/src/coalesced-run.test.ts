import { describe, expect, it } from 'vitest'
import { coalescedRun } from './coalesced-run.js'

describe('coalescedRun', () => {
  it('runs one at a time, and once more for every burst of calls during a run', async () => {
    let runs = 0
    let active = 0
    let overlapped = false
    const call = coalescedRun(async () => {
      active++
      overlapped ||= active > 1
      runs++
      await new Promise((resolve) => setTimeout(resolve, 20))
      active--
    })
    const first = call()
    const during = [call(), call(), call()]
    await Promise.all([first, ...during])
    // The calls made during the first run are answered by a run that started after them.
    expect(runs).toBe(2)
    expect(overlapped).toBe(false)
    await call()
    expect(runs).toBe(3)
  })
})
