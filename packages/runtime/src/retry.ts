import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from './logger.js'

export interface RetryOptions {
  /** What is being waited for, for the log: "PostgreSQL migrations", "Redis". */
  what: string
  logger: Pick<Logger, 'warn'>
  initialDelayMs?: number
  maxDelayMs?: number
  /** Stops retrying (rejecting with the abort reason) once aborted. */
  signal?: AbortSignal
}

/**
 * Runs `attempt` until it succeeds, waiting between failures 0.5 s, 1 s, 2 s … up to `maxDelayMs`,
 * each delay jittered by ±25 % so that many processes restarting together do not retry in step.
 * A dependency that is down at start delays the app instead of crash-looping it.
 */
export async function retryUntilSuccess<T>(attempt: () => Promise<T>, options: RetryOptions): Promise<T> {
  const { what, logger, initialDelayMs = 500, maxDelayMs = 15_000, signal } = options
  let delayMs = initialDelayMs
  for (let attempts = 1; ; attempts++) {
    signal?.throwIfAborted()
    try {
      return await attempt()
    } catch (error) {
      const waitMs = Math.round(delayMs * (0.75 + Math.random() * 0.5))
      logger.warn(
        { attempts, err: error instanceof Error ? error.message : String(error), retry_in_ms: waitMs },
        `${what} not available yet; retrying`,
      )
      await sleep(waitMs, undefined, { signal })
      delayMs = Math.min(delayMs * 2, maxDelayMs)
    }
  }
}
