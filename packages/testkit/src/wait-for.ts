import { setTimeout as sleep } from 'node:timers/promises'

export interface WaitOptions {
  timeoutMs?: number
  intervalMs?: number
  /** What is awaited, for the timeout message; a function is read when the wait times out. */
  what?: string | (() => string)
}

type Falsy = false | null | undefined | 0 | ''

/** Polls `check` until it returns a truthy value (which is returned), or fails after the timeout. */
export async function waitFor<T>(
  check: () => Promise<T | Falsy> | T | Falsy,
  options: WaitOptions = {},
): Promise<T> {
  const { timeoutMs = 10_000, intervalMs = 100, what = 'condition' } = options
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await check()
      if (value) return value as T
    } catch (error) {
      lastError = error
    }
    if (Date.now() > deadline) {
      const reason = lastError instanceof Error ? `: ${lastError.message}` : ''
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}${reason}`,
      )
    }
    await sleep(intervalMs)
  }
}
