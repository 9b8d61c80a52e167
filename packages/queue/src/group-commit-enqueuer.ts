import { randomUUID } from 'node:crypto'
import type { BatchEnqueuer, NewBatch } from './enqueue.js'
import { type GathererLimits, JobGatherer } from './job-gatherer.js'

interface Pending {
  batch: NewBatch
  /** The id of the batch that carried it, set when its group is queued. */
  queuedAs?: string
}

/**
 * Group commit for producers that queue many small batches (the MQTT bridge: one batch per
 * message). Batches handed in one by one are gathered; the batches of one device in a group are
 * merged into one (fewer jobs for the writers: a point is identified by device and timestamp, so
 * merging changes nothing stored), and the group is queued with one `enqueueMany` (one MULTI).
 * Each caller's promise resolves only once the MULTI that carried its batch succeeded, with the id
 * of the batch that carried it, and rejects with the MULTI's error otherwise: an acknowledgement
 * still waits for its own enqueue.
 */
export function createGroupCommitEnqueuer(inner: BatchEnqueuer, limits: GathererLimits): BatchEnqueuer {
  const gatherer = new JobGatherer<Pending>(async (items) => {
    const byDevice = new Map<string, Pending[]>()
    for (const { value } of items) {
      const key = `${value.batch.device_id}\u0000${value.batch.device_type ?? ''}`
      const group = byDevice.get(key)
      if (group) group.push(value)
      else byDevice.set(key, [value])
    }
    const merged = [...byDevice.values()].map((group) => {
      const [first, ...rest] = group as [Pending, ...Pending[]]
      const batch: NewBatch =
        rest.length === 0
          ? first.batch
          : {
              ...first.batch,
              received_at: Math.min(...group.map((p) => p.batch.received_at)),
              points: group.flatMap((p) => p.batch.points),
            }
      return { batch, group }
    })
    const queued = await inner.enqueueMany(merged.map((m) => m.batch))
    merged.forEach(({ group }, index) => {
      for (const pending of group) pending.queuedAs = queued[index]?.batchId
    })
    return undefined
  }, limits)

  let closing: Promise<void> | undefined
  return {
    async enqueue(batch) {
      const pending: Pending = { batch: { ...batch, batch_id: batch.batch_id ?? randomUUID() } }
      await gatherer.add({
        id: pending.batch.batch_id as string,
        points: batch.points.length,
        value: pending,
      })
      return { batchId: pending.queuedAs as string }
    },
    enqueueMany: (batches) => inner.enqueueMany(batches),
    close() {
      closing ??= gatherer.drain().then(() => inner.close())
      return closing
    },
  }
}
