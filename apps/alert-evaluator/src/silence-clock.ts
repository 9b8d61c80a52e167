import type { AlertStatesRepository } from '@iotflow/db'
import type { Logger } from '@iotflow/queue'
import { coalescedRun } from '@iotflow/runtime'

export interface SilenceClockOptions {
  states: AlertStatesRepository
  /** The ids of the no_data rules (from the evaluator's rule cache). */
  noDataRuleIds: () => number[]
  intervalMs: number
  /** Called after a round that fired some alerts (to drain the outbox at once). */
  onFired: () => Promise<void> | undefined
  logger: Logger
}

/**
 * The clock of no_data rules: a silent device produces no batch, so the stream alone can never
 * fire them. Every `intervalMs` each evaluator asks PostgreSQL to fire the silences due
 * (`fireSilent`, which makes one transition per silence however many evaluators ask at once).
 */
export function startSilenceClock(options: SilenceClockOptions) {
  const round = coalescedRun(async () => {
    try {
      const ids = options.noDataRuleIds()
      if (ids.length === 0) return
      if ((await options.states.fireSilent(ids)) > 0) await options.onFired()
    } catch (error) {
      options.logger.warn({ err: (error as Error).message }, 'could not look for silent devices')
    }
  })
  const timer = setInterval(() => void round(), options.intervalMs)
  return {
    async close() {
      clearInterval(timer)
      await round()
    },
  }
}
