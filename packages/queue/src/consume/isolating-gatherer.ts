import type { DeviceColumns, StoreBatchPayload } from '@iotflow/contracts'
import { withBatchWriteSpan } from './batch-write-span.js'
import { type FailureKind, writeIsolatingFailures } from './failure-isolation.js'
import { JobGatherer } from './job-gatherer.js'

export interface IsolatingGathererOptions {
  maxBatchPoints: number
  lingerMs: number
  maxInFlightWrites: number
  writeBatch: (batches: DeviceColumns[]) => Promise<void>
  classify: (error: Error) => FailureKind
}

/**
 * The gatherer of a consumer of device batches (a writer's jobs, the alert stream's entries): what
 * it gathers is written at once under a write span, failing device batches isolated
 * (failure-isolation.ts); `onWritten` runs after each write that reached the store.
 */
export function createIsolatingGatherer(
  queueName: string,
  options: IsolatingGathererOptions,
  onWritten: () => void,
): JobGatherer<StoreBatchPayload> {
  return new JobGatherer<StoreBatchPayload>(
    async (items) => {
      const failures = await withBatchWriteSpan(
        queueName,
        items.map((item) => item.value),
        () => writeIsolatingFailures(items, options.writeBatch, options.classify),
      )
      onWritten()
      return failures
    },
    { maxPoints: options.maxBatchPoints, lingerMs: options.lingerMs, maxInFlight: options.maxInFlightWrites },
  )
}
