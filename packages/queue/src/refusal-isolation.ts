import type { DeviceBatch, StoreBatchPayload } from '@iotflow/contracts'
import type { FailureKind } from './batching-worker.js'
import type { GatheredItem } from './job-gatherer.js'

/** A job some of whose device batches the store refuses for good; the rest of it is stored. */
export class RefusedBatchesError extends Error {
  override name = 'RefusedBatchesError'
  constructor(
    readonly refused: DeviceBatch[],
    cause: Error,
  ) {
    const devices = [...new Set(refused.map((b) => b.device_id))].join(', ')
    super(`refused for good (device ${devices}): ${cause.message}`, { cause })
  }
}

/**
 * Writes the device batches of every gathered job at once. When the store refuses that write for
 * good, it finds the refused device batches by bisection (a job may carry many devices' requests),
 * so that one poison batch fails alone and everything else, in its job or in others, is stored.
 * Writes are idempotent: repeating what a failed write may have stored changes nothing. Unavailable
 * and transient failures are thrown as they are (the whole gathering is retried).
 */
export async function writeIsolatingRefusals(
  items: GatheredItem<StoreBatchPayload>[],
  writeBatch: (batches: DeviceBatch[]) => Promise<void>,
  classify: (error: Error) => FailureKind,
): Promise<Map<string, RefusedBatchesError> | undefined> {
  const all = items.flatMap((item) => item.value.batches)
  const refused = new Map<DeviceBatch, Error>()

  async function write(batches: DeviceBatch[]): Promise<void> {
    try {
      await writeBatch(batches)
    } catch (thrown) {
      const error = asError(thrown)
      if (classify(error) !== 'permanent') throw error
      if (batches.length === 1) {
        refused.set(batches[0] as DeviceBatch, error)
        return
      }
      const half = Math.ceil(batches.length / 2)
      await write(batches.slice(0, half))
      await write(batches.slice(half))
    }
  }

  await write(all)
  if (refused.size === 0) return undefined
  const failures = new Map<string, RefusedBatchesError>()
  for (const item of items) {
    const own = item.value.batches.filter((batch) => refused.has(batch))
    const first = own[0]
    if (first) failures.set(item.id, new RefusedBatchesError(own, refused.get(first) as Error))
  }
  return failures
}

export const asError = (error: unknown) => (error instanceof Error ? error : new Error(String(error)))
