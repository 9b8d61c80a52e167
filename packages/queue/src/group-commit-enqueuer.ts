import { randomUUID } from 'node:crypto'
import type { BatchEnqueuer, NewBatch } from './enqueue.js'
import { type GathererLimits, JobGatherer } from './job-gatherer.js'

/**
 * Group commit for producers that queue many small batches (the MQTT bridge: one batch per
 * message). Batches handed in one by one are gathered and queued with one `enqueueMany` (one
 * MULTI); each caller's promise resolves only once the MULTI that carried its batch succeeded, and
 * rejects with its error otherwise, so an acknowledgement still waits for its own enqueue.
 */
export function createGroupCommitEnqueuer(inner: BatchEnqueuer, limits: GathererLimits): BatchEnqueuer {
  const gatherer = new JobGatherer<NewBatch>(async (items) => {
    await inner.enqueueMany(items.map((item) => item.value))
    return undefined
  }, limits)
  let closing: Promise<void> | undefined
  return {
    async enqueue(batch) {
      const batchId = batch.batch_id ?? randomUUID()
      await gatherer.add({ id: batchId, points: batch.points.length, value: { ...batch, batch_id: batchId } })
      return { batchId }
    },
    enqueueMany: (batches) => inner.enqueueMany(batches),
    close() {
      closing ??= gatherer.drain().then(() => inner.close())
      return closing
    },
  }
}
