/**
 * At most `max` holders at once; the others wait their turn in order, at most `maxWaiting` of them:
 * past that, `acquire` answers undefined at once and the caller refuses the work. A release hands
 * the slot to the first waiter. Bounds what work in progress holds in memory, whatever the number
 * of clients.
 */
export function createConcurrencyLimit(max: number, maxWaiting: number) {
  let active = 0
  const waiting: (() => void)[] = []
  const release = () => {
    const next = waiting.shift()
    if (next) next()
    else active--
  }
  /** The release of one slot; releasing twice is harmless. */
  const slot = () => {
    let released = false
    return () => {
      if (released) return
      released = true
      release()
    }
  }
  return {
    /** Resolves with the release of a slot once one is free; undefined when too many already wait. */
    async acquire(): Promise<(() => void) | undefined> {
      if (active < max) {
        active++
        return slot()
      }
      if (waiting.length >= maxWaiting) return undefined
      await new Promise<void>((resolve) => waiting.push(resolve))
      return slot()
    },
    get active() {
      return active
    },
    get waiting() {
      return waiting.length
    },
  }
}

export type ConcurrencyLimit = ReturnType<typeof createConcurrencyLimit>
