import type { Logger } from './logger.js'
export interface PeriodicJob {
  /** Runs the job now (waiting for a run in progress first). */
  runNow(): Promise<void>
  close(): Promise<void>
}

/**
 * Runs `job` at start and then every `intervalMs`, never two runs at once. A failed run is logged
 * and tried again at the next interval. `close` stops the timer and waits for a run in progress.
 */
export function startPeriodicJob(
  name: string,
  intervalMs: number,
  job: () => Promise<void>,
  logger: Pick<Logger, 'warn'>,
): PeriodicJob {
  let running: Promise<void> = Promise.resolve()
  const run = () => {
    running = running.then(() =>
      job().catch((error: Error) => logger.warn({ job: name, err: error.message }, 'periodic job failed')),
    )
    return running
  }
  const timer = setInterval(run, intervalMs)
  void run()
  return {
    runNow: run,
    async close() {
      clearInterval(timer)
      await running
    },
  }
}

/** The writers' retention job: none when RETENTION_DAYS is 0 (keep forever). */
export function startRetentionJob(
  config: { RETENTION_DAYS: number; RETENTION_CHECK_INTERVAL_MS: number },
  apply: (days: number) => Promise<void>,
  logger: Pick<Logger, 'warn'>,
): PeriodicJob | undefined {
  const days = config.RETENTION_DAYS
  if (days === 0) return undefined
  return startPeriodicJob('retention', config.RETENTION_CHECK_INTERVAL_MS, () => apply(days), logger)
}
