import { randomUUID } from 'node:crypto'
import type { StoreBatchPayload } from '@iotflow/contracts'
import { type FlowJob, FlowProducer } from 'bullmq'
import type { Redis } from 'ioredis'
import { bullPrefix, queueCatalog, storeQueues } from './catalog.js'

/** A batch to queue; its id is made up unless the caller already gave it one. */
export type NewBatch = Omit<StoreBatchPayload, 'batch_id'> & { batch_id?: string }

export interface BatchEnqueuer {
  /** Resolves only once Redis has accepted the whole fan-out; rejects if it did not. */
  enqueue(batch: NewBatch): Promise<{ batchId: string }>
  /**
   * Several batches (of any devices) in one MULTI: all of them are queued, or none. Resolves with
   * their ids in the order given.
   */
  enqueueMany(batches: NewBatch[]): Promise<{ batchId: string }[]>
  close(): Promise<void>
}

/**
 * Fans a batch out to every store queue atomically: FlowProducer writes the parent and all its
 * children in one MULTI, so a batch is in both writer queues or in neither.
 */
export function createBatchEnqueuer(connection: Redis, queuePrefix: string): BatchEnqueuer {
  const flows = new FlowProducer({ connection, prefix: bullPrefix(queuePrefix) })
  return {
    async enqueue(batch) {
      const flow = fanOut(batch)
      await flows.add(flow.job)
      return { batchId: flow.batchId }
    },
    async enqueueMany(batches) {
      const fanned = batches.map(fanOut)
      await flows.addBulk(fanned.map((flow) => flow.job))
      return fanned.map((flow) => ({ batchId: flow.batchId }))
    },
    close: () => flows.close(),
  }
}

/** One batch as a flow: the parent summary, with one child per store queue. */
function fanOut(batch: NewBatch): { batchId: string; job: FlowJob } {
  const { batches } = queueCatalog
  const batchId = batch.batch_id ?? randomUUID()
  const payload: StoreBatchPayload = { ...batch, batch_id: batchId }
  return {
    batchId,
    job: {
      name: batches.jobName,
      queueName: batches.name,
      data: {
        batch_id: batchId,
        device_id: batch.device_id,
        points: batch.points.length,
        received_at: batch.received_at,
      },
      opts: { jobId: batchId, ...batches.options },
      children: storeQueues.map((key) => ({
        name: queueCatalog[key].jobName,
        queueName: queueCatalog[key].name,
        data: payload,
        opts: { ...queueCatalog[key].options },
      })),
    },
  }
}
