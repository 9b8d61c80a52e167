import { asError } from '../consume/as-error.js'
import { type GathererLimits, JobGatherer } from '../consume/job-gatherer.js'
import { groupedBy } from '../grouped-by.js'
import type { Admission, BatchEnqueuer, NewBatch } from './enqueue.js'
import type { MultiTake } from './multi-take.js'

interface Pending {
  batch: NewBatch
  /** The caller's own check, run while the batch gathers (enqueue's `admission`). */
  admission?: Promise<Admission> | undefined
  /** The id of the batch that carried it, set when its group is queued. */
  queuedAs?: string
  /** Set once its take (if any) is handed to the inner enqueuer, which settles it. */
  handedOver?: boolean
}

/**
 * Group commit for producers that queue many small batches (single-point requests, one batch per
 * MQTT message). Batches handed in one by one are gathered until `maxPoints` points wait or the
 * oldest has waited `lingerMs` (while `maxInFlight` enqueues run, new batches gather for the next),
 * and the group is queued as ONE batch per queue partition, whatever devices it holds: one MULTI and
 * one job per store and partition, however many requests it carries. The batches of one device are
 * merged. Each caller's promise resolves only once the MULTI that carried its batch succeeded, with
 * that batch's id, and rejects with the MULTI's error otherwise: an acknowledgement still waits for
 * its own enqueue. A caller's `admission` runs while its batch gathers and is awaited at the flush;
 * a batch it refuses is left out, and the takes of those it admits ride their partition's MULTI.
 */
export function createGroupCommitEnqueuer(inner: BatchEnqueuer, limits: GathererLimits): BatchEnqueuer {
  const gatherer = new JobGatherer<Pending>(async (gathered) => {
    // A batch whose admission failed is left out of the MULTI; its caller gets that failure.
    const failures = new Map<string, Error>()
    const admissions = await Promise.allSettled(gathered.map(({ value }) => value.admission))
    const takeOf = new Map<string, MultiTake>()
    const items = gathered.filter((item, i) => {
      const admission = admissions[i]
      if (admission?.status !== 'rejected') {
        if (admission?.value) takeOf.set(item.id, admission.value)
        return true
      }
      failures.set(item.id, asError(admission.reason))
      return false
    })
    if (items.length === 0) return failures
    // One MULTI per queue partition: a flow never spans partitions (each is its own cluster slot),
    // and a partition whose MULTI fails fails only its own callers.
    const byPartition = groupedBy(items, (item) => inner.partitionOf(item.value.batch.device_id))
    const outcomes = await Promise.allSettled(
      [...byPartition.values()].map(async (group) => {
        const takes = group.flatMap(({ id, value }) => {
          value.handedOver = true
          return takeOf.get(id) ?? []
        })
        const [queued] = await inner.enqueueMany(mergedByDevice(group.map(({ value }) => value.batch)), takes)
        for (const { value } of group) value.queuedAs = queued?.batchId
      }),
    )
    ;[...byPartition.values()].forEach((group, i) => {
      const outcome = outcomes[i]
      if (outcome?.status === 'rejected')
        for (const { id } of group) failures.set(id, asError(outcome.reason))
    })
    return failures.size > 0 ? failures : undefined
  }, limits)

  let nextId = 0
  let closing: Promise<void> | undefined
  return {
    async enqueue(batch, admission) {
      // Observed here, as it may settle before the flush looks at it; a rejection is answered then.
      admission?.catch(() => {})
      const pending: Pending = { batch, admission }
      nextId = (nextId + 1) % Number.MAX_SAFE_INTEGER
      try {
        await gatherer.add({ id: String(nextId), points: batch.points.length, value: pending })
      } finally {
        // A take whose batch never reached the enqueuer (refused by the gatherer) is released.
        if (!pending.handedOver)
          admission?.then(
            (take) => take?.settle(false),
            () => {},
          )
      }
      return { batchId: pending.queuedAs as string }
    },
    enqueueMany: (batches, takes) => inner.enqueueMany(batches, takes),
    partitionOf: (deviceId) => inner.partitionOf(deviceId),
    close() {
      closing ??= gatherer.drain().then(() => inner.close())
      return closing
    },
  }
}

/**
 * The batches of one device merged (a point is identified by device and timestamp, so merging
 * changes nothing stored); a device's lone batch goes as it came.
 */
function mergedByDevice(batches: NewBatch[]): NewBatch[] {
  const byDevice = groupedBy(batches, (batch) => `${batch.device_id}\u0000${batch.device_type ?? ''}`)
  return [...byDevice.values()].map((group) => {
    const [first] = group as [NewBatch, ...NewBatch[]]
    if (group.length === 1) return first
    const merged: NewBatch = {
      ...first,
      received_at: Math.min(...group.map((b) => b.received_at)),
      points: group.flatMap((b) => b.points),
    }
    // Each traced request stays linkable from the writers' batch write.
    const traceparents = group.flatMap((b) => b.traceparents ?? [])
    if (traceparents.length > 0) merged.traceparents = traceparents
    return merged
  })
}
