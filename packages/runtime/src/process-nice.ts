import { getPriority, setPriority } from 'node:os'
import type { Logger } from './logger.js'

/**
 * Sets this process's scheduling priority (PROCESS_NICE). A priority the process may not take (below
 * its current one, without the privilege) is logged and skipped: the app runs either way.
 */
export function applyProcessNice(nice: number, logger: Pick<Logger, 'info' | 'warn'>): void {
  const current = getPriority()
  if (current === nice) return
  try {
    setPriority(nice)
    logger.info({ nice }, 'process priority set')
  } catch (error) {
    logger.warn({ nice, current, err: (error as Error).message }, 'could not set the process priority')
  }
}
