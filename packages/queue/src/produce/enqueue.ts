import { randomUUID } from 'node:crypto'
import {
  type BatchSummaryPayload,
  type DeviceBatch,
  pointsInPayload,
  type StoreBatchPayload,
  toColumns,
} from '@iotflow/contracts'
import type { FlowJob, JobsOptions } from 'bullmq'
import {
  queueCatalog,
  type StoreQueueKey,
  type StoreRetryOverrides,
  storeJobOptionsWith,
  storeQueues,
} from '../catalog.js'
import { groupedBy } from '../grouped-by.js'
import { allPartitions, partitionOfDevice, partitionPrefix, type QueueLayout } from '../partitions.js'
import type { RedisConnection } from '../redis/connection.js'
import type { MultiTake } from './multi-take.js'
import { type ReplicaAck, waitForReplicas } from './replica-ack.js'
import { createTokenTakingFlowProducer } from './token-taking-flow-producer.js'

/** A device's batch to queue. */
export type NewBatch = DeviceBatch

/**
 * What a caller's admission check answers for a batch it admits: nothing, or tokens to take in the
 * MULTI that queues the batch (multi-take.ts), settled whether or not that MULTI runs.
 */
export type Admission = MultiTake | undefined

export interface BatchEnqueuer {
  /**
   * Resolves only once Redis has accepted the whole fan-out; rejects if it did not. `admission`, a
   * check of the caller's that is still running (its rate limit), must resolve before the batch is
   * queued; if it rejects, nothing of the batch is queued and `enqueue` rejects with its error; if
   * it resolves with a take, the take runs in the batch's MULTI. A group commit runs it while the
   * batch gathers, so it adds no wait of its own.
   */
  enqueue(batch: NewBatch, admission?: Promise<Admission>): Promise<{ batchId: string }>
  /**
   * Several device batches (of any devices) as one batch per queue partition: all of a partition's
   * are queued, or none. Resolves with the id of the batch that carries each, once per batch given;
   * rejects when any partition's could not be queued (the others' may be: a retry is harmless, as
   * points are keyed by device and time). Each of `takes` runs in the MULTI of its device's partition
   * and is settled either way.
   */
  enqueueMany(batches: NewBatch[], takes?: readonly MultiTake[]): Promise<{ batchId: string }[]>
  /** The queue partition a device's batches go to: batches of different partitions never share a flow. */
  partitionOf(deviceId: number): number
  close(): Promise<void>
}

export interface BatchEnqueuerOptions {
  /**
   * Whether each batch also goes to the alert evaluator's stream (while any alert rule exists: see
   * watchAlertRules, which assembleIngest keeps). Unset: never.
   */
  alertFanOut?: () => boolean
  /**
   * Resolve only once this many replicas hold the batch (REDIS_MIN_REPLICAS_ACK): a primary that
   * dies right after then cannot take an acknowledged batch with it. Unset: once the primary has it.
   */
  replicasAck?: ReplicaAck
}

/**
 * Fans a batch out to every store queue atomically: FlowProducer writes the parent and all its
 * children in one MULTI, so a batch is in both writer queues or in neither. `retry` overrides the
 * numbers of the store jobs' retry policy (STORE_JOB_ATTEMPTS, STORE_JOB_BACKOFF_MS). The alert
 * evaluator's copy, when there is one, is an entry of the partition's alert stream added in the same
 * MULTI (alert-stream-keys.ts): not a job of the flow, so it never holds back the parent's completion
 * (the batch's "stored") and is not counted in the store backlog. Each device's batches go to its queue
 * partition (partitions.ts); device batches of several partitions become one flow per partition.
 */
export function createBatchEnqueuer(
  connection: RedisConnection,
  layout: QueueLayout,
  retry: StoreRetryOverrides = {},
  options: BatchEnqueuerOptions = {},
): BatchEnqueuer {
  // Per partition, counting each store job's points into its backlog in the same MULTI (backlog.ts).
  const flowsOf = allPartitions(layout).map((partition) => {
    const queuePrefix = partitionPrefix(layout, partition)
    return { queuePrefix, producer: createTokenTakingFlowProducer(connection, queuePrefix) }
  })
  const storeOptions = Object.fromEntries(
    storeQueues.map((key) => [key, storeJobOptionsWith(key, retry)]),
  ) as Record<StoreQueueKey, JobsOptions>
  const partitionOf = (deviceId: number) => partitionOfDevice(layout, deviceId)

  /** One partition's device batches as one flow, in one MULTI, with the takes of its devices. */
  async function enqueueFlow(
    partition: number,
    batches: NewBatch[],
    takes: readonly MultiTake[] = [],
  ): Promise<string> {
    const { queuePrefix, producer } = flowsOf[partition] as (typeof flowsOf)[number]
    const flow = fanOut(batches, storeOptions)
    await producer.addTaking(flow.job, takes, options.alertFanOut?.() ?? false)
    if (options.replicasAck) await waitForReplicas(connection, queuePrefix, options.replicasAck)
    return flow.batchId
  }

  async function enqueueMany(batches: NewBatch[], takes: readonly MultiTake[] = []) {
    if (layout.partitions === 1) {
      const batchId = await enqueueFlow(0, batches, takes)
      return batches.map(() => ({ batchId }))
    }
    const takesOf = groupedBy(takes, (take) => partitionOf(take.deviceId))
    const byPartition = groupedBy(batches, (batch) => partitionOf(batch.device_id))
    // Every partition's MULTI is awaited, failed or not, before the takes left over are released.
    const outcomes = await Promise.allSettled(
      [...byPartition].map(
        async ([partition, group]) =>
          [partition, await enqueueFlow(partition, group, takesOf.get(partition))] as const,
      ),
    )
    // A take whose device has no batch here is never in a MULTI: released.
    for (const take of takes) take.settle(false)
    const ids = new Map<number, string>()
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') throw outcome.reason
      ids.set(...outcome.value)
    }
    return batches.map((batch) => ({ batchId: ids.get(partitionOf(batch.device_id)) as string }))
  }
  return {
    async enqueue(batch, admission) {
      const take = await admission
      const [queued] = await enqueueMany([batch], take ? [take] : [])
      return queued as { batchId: string }
    },
    enqueueMany,
    partitionOf,
    close: () => Promise.all(flowsOf.map(({ producer }) => producer.close())).then(() => undefined),
  }
}

/** Device batches as one flow: the parent summary, with one child per store queue. */
function fanOut(
  batches: NewBatch[],
  storeOptions: Record<StoreQueueKey, JobsOptions>,
): { batchId: string; job: FlowJob } {
  const { batches: parent } = queueCatalog
  const batchId = randomUUID()
  // Columns: a third of the bytes through Redis and a third of each writer's parse (device-columns.ts).
  const payload: StoreBatchPayload = { batch_id: batchId, batches: batches.map(toColumns) }
  const summary: BatchSummaryPayload = {
    batch_id: batchId,
    points: pointsInPayload(payload),
    received_at: batches.reduce((min, b) => Math.min(min, b.received_at), Number.POSITIVE_INFINITY),
    devices: batches.map((b) => ({ device_id: b.device_id, points: b.points.length })),
  }
  return {
    batchId,
    job: {
      name: parent.jobName,
      queueName: parent.name,
      data: summary,
      opts: { jobId: batchId, ...parent.options },
      children: storeQueues.map((key) => ({
        name: queueCatalog[key].jobName,
        queueName: queueCatalog[key].name,
        data: payload,
        opts: { ...storeOptions[key] },
      })),
    },
  }
}
