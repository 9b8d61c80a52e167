import type { DeviceColumns, StoreBatchPayload } from '@iotflow/contracts'
import { type Job, UnrecoverableError } from 'bullmq'
import { asError } from './as-error.js'
import type { GatheredItem } from './job-gatherer.js'

/** How a writer classifies a failed write (docs/pipeline.md, "Failures, by kind"). */
export type FailureKind = 'unavailable' | 'permanent' | 'transient'

/** A job some of whose device batches the store refuses for good; the rest of it is stored. */
export class RefusedBatchesError extends Error {
  override name = 'RefusedBatchesError'
  constructor(
    readonly refused: DeviceColumns[],
    cause: Error,
  ) {
    const devices = [...new Set(refused.map((b) => b.device_id))].join(', ')
    super(`refused for good (device ${devices}): ${cause.message}`, { cause })
  }
}

/**
 * A job some of whose device batches failed transiently (perhaps with others refused for good); the
 * rest of it is stored. The job is retried with the unstored ones only; its error is the store's.
 */
export class UnstoredBatchesError extends Error {
  override name = 'UnstoredBatchesError'
  constructor(
    readonly unstored: DeviceColumns[],
    override readonly cause: Error,
  ) {
    super(cause.message, { cause })
  }
}

/**
 * Writes the device batches of every gathered job at once. When that write fails for good or
 * transiently, it finds the failing device batches by bisection (a job may carry many devices'
 * requests), so that one bad batch fails alone and everything else, in its job or in others, is
 * stored: a batch the store refuses goes to the dead-letter set at once, one failing transiently is
 * retried, and neither holds back what was written with it. When both halves of a set fail
 * transiently, the fault is not one batch's (a conflict, a struggling server): bisection stops there
 * and the whole set is retried later, so a failure of every write costs three writes, not one per
 * batch. Writes are idempotent: repeating what a failed write may have stored changes nothing. A
 * store that is unavailable is thrown as it is (the whole gathering goes back to the queue).
 */
export async function writeIsolatingFailures(
  items: GatheredItem<StoreBatchPayload>[],
  writeBatch: (batches: DeviceColumns[]) => Promise<void>,
  classify: (error: Error) => FailureKind,
): Promise<Map<string, RefusedBatchesError | UnstoredBatchesError> | undefined> {
  const all = items.flatMap((item) => item.value.batches)
  const refused = new Map<DeviceColumns, Error>()
  const retried = new Map<DeviceColumns, Error>()

  /** The error of writing `batches`, if it failed; an unavailable store is thrown. */
  async function attempt(batches: DeviceColumns[]): Promise<Error | undefined> {
    try {
      await writeBatch(batches)
      return undefined
    } catch (thrown) {
      const error = asError(thrown)
      if (classify(error) === 'unavailable') throw error
      return error
    }
  }

  /** `batches` failed with `error`: writes what of them can be, and records the rest. */
  async function isolate(batches: DeviceColumns[], error: Error): Promise<void> {
    if (batches.length === 1) {
      ;(classify(error) === 'permanent' ? refused : retried).set(batches[0] as DeviceColumns, error)
      return
    }
    const mid = Math.ceil(batches.length / 2)
    const halves = [batches.slice(0, mid), batches.slice(mid)]
    const errors = [await attempt(halves[0] as DeviceColumns[]), await attempt(halves[1] as DeviceColumns[])]
    if (errors.every((e) => e && classify(e) === 'transient')) {
      halves.forEach((half, i) => {
        for (const batch of half) retried.set(batch, errors[i] as Error)
      })
      return
    }
    for (const [i, half] of halves.entries()) {
      const failure = errors[i]
      if (failure) await isolate(half, failure)
    }
  }

  const error = await attempt(all)
  if (!error) return undefined
  await isolate(all, error)
  const failures = new Map<string, RefusedBatchesError | UnstoredBatchesError>()
  for (const item of items) {
    const own = item.value.batches
    const firstRetried = own.find((batch) => retried.has(batch))
    const ownRefused = own.filter((batch) => refused.has(batch))
    if (firstRetried) {
      const unstored = own.filter((batch) => retried.has(batch) || refused.has(batch))
      failures.set(item.id, new UnstoredBatchesError(unstored, retried.get(firstRetried) as Error))
    } else if (ownRefused[0]) {
      failures.set(item.id, new RefusedBatchesError(ownRefused, refused.get(ownRefused[0]) as Error))
    }
  }
  return failures
}

/**
 * Whether a job that just failed stays failed (in the dead-letter set): its last attempt was used, or
 * the payload can never succeed. The writer's log and its backlog release decide by this one test.
 */
export function failedForGood(job: Pick<Job, 'attemptsMade' | 'opts'>, error: Error): boolean {
  return (
    job.attemptsMade >= (job.opts.attempts ?? 1) ||
    error instanceof UnrecoverableError ||
    error.name === 'UnrecoverableError'
  )
}
