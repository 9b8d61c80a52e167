import { randomUUID } from 'node:crypto'
import type { StoreBatchPayload } from '@iotflow/contracts'
import { FlowProducer } from 'bullmq'
import type { Redis } from 'ioredis'
import { bullPrefix, queueCatalog, storeQueues } from './catalog.js'

export interface BatchEnqueuer {
  /** Resolves only once Redis has accepted the whole fan-out; rejects if it did not. */
  enqueue(batch: Omit<StoreBatchPayload, 'batch_id'>): Promise<{ batchId: string }>
  close(): Promise<void>
}

/**
 * Fans a batch out to every store queue atomically: FlowProducer writes the parent and all its
 * children in one MULTI, so a batch is in both writer queues or in neither.
 */
export function createBatchEnqueuer(connection: Redis, queuePrefix: string): BatchEnqueuer {
  const flows = new FlowProducer({ connection, prefix: bullPrefix(queuePrefix) })
  const { batches } = queueCatalog
  return {
    async enqueue(batch) {
      const batchId = randomUUID()
      const payload: StoreBatchPayload = { batch_id: batchId, ...batch }
      await flows.add({
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
      })
      return { batchId }
    },
    close: () => flows.close(),
  }
}
