import { waitFor } from './wait-for.js'

/** The part of a BullMQ Queue that settledJobs reads. */
export interface JobCounts {
  getJobCounts(...types: string[]): Promise<Record<string, number>>
}

/**
 * Waits until a queue holds no job waiting, active, delayed or prioritized: every job it was given is
 * done (completed jobs may be removed) or failed for good. Resolves with the counts, `failed` among them.
 */
export function settledJobs(queue: JobCounts, what = 'every job settled') {
  return waitFor(
    async () => {
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'failed')
      const pending =
        (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) + (counts.prioritized ?? 0)
      return pending === 0 && counts
    },
    { what },
  )
}
