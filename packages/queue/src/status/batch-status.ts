import { Job, Queue } from 'bullmq'
import { bullPrefix, type QueuePayloads, queueCatalog, type StoreQueueKey, storeQueues } from '../catalog.js'
import { allPartitions, partitionPrefix, type QueueLayout } from '../partitions.js'
import { onSharedConnection, type RedisConnection } from '../redis/connection.js'

export type StoreState = 'queued' | 'stored' | 'failed'

export interface StoreStatus {
  status: StoreState
  /** Attempts used so far (a store that was down does not use attempts). */
  attempts: number
  /** The last error, while retrying or once failed for good. */
  error?: string
}

export interface BatchStatus {
  batch_id: string
  /** Every point of the batch (a group commit may carry several devices' points). */
  points: number
  received_at: number
  devices: { device_id: number; points: number }[]
  /** `stored` once every store has it; `failed` once a store gave up (it is in the dead-letter set). */
  status: StoreState
  stores: Record<'postgres' | 'influxdb', StoreStatus>
}

const storeNames: Record<StoreQueueKey, 'postgres' | 'influxdb'> = {
  storePostgres: 'postgres',
  storeInflux: 'influxdb',
}

/**
 * Reads where a batch is from its fan-out: the parent job (kept a day after completion, the newest
 * 100,000 at most) and the state of each child. Undefined when the batch is unknown or expired. A
 * batch id does not say its queue partition: every partition is asked at once (one lookup each),
 * and the one holding the parent answers.
 */
export function createBatchStatusReader(connection: RedisConnection, layout: QueueLayout) {
  const partitions = allPartitions(layout).map((partition) =>
    createPartitionStatusReader(connection, partitionPrefix(layout, partition)),
  )
  return {
    async read(batchId: string): Promise<BatchStatus | undefined> {
      const found = await Promise.all(partitions.map((reader) => reader.read(batchId)))
      return found.find((status) => status !== undefined)
    },
    close: () => Promise.all(partitions.map((reader) => reader.close())).then(() => undefined),
  }
}

export type BatchStatusReader = ReturnType<typeof createBatchStatusReader>

/** The batch status reader of one partition (`queuePrefix` a partitionPrefix). */
function createPartitionStatusReader(connection: RedisConnection, queuePrefix: string) {
  const prefix = bullPrefix(queuePrefix)
  const options = { connection, prefix, ...onSharedConnection }
  const batches = new Queue<QueuePayloads['batches']>(queueCatalog.batches.name, options)
  const stores = Object.fromEntries(
    storeQueues.map((key) => [key, new Queue(queueCatalog[key].name, options)]),
  ) as Record<StoreQueueKey, Queue>

  async function childStatus(key: StoreQueueKey, childKey: string): Promise<StoreStatus> {
    const childId = childKey.slice(childKey.lastIndexOf(':') + 1)
    const child = await Job.fromId(stores[key], childId)
    if (!child) return { status: 'queued', attempts: 0 }
    const state = await child.getState()
    const error = child.failedReason || undefined
    const status: StoreState = state === 'failed' ? 'failed' : state === 'completed' ? 'stored' : 'queued'
    return { status, attempts: child.attemptsMade, ...(error && { error }) }
  }

  return {
    async read(batchId: string): Promise<BatchStatus | undefined> {
      const parent = await Job.fromId(batches, batchId)
      if (!parent) return undefined
      const { processed = {}, unprocessed = [] } = await parent.getDependencies()
      const entries = await Promise.all(
        storeQueues.map(async (key) => {
          const marker = `:${queueCatalog[key].name}:`
          const done = Object.keys(processed).find((k) => k.includes(marker))
          const pending = unprocessed.find((k) => k.includes(marker))
          const status =
            done || !pending ? { status: 'stored' as const, attempts: 0 } : await childStatus(key, pending)
          return [storeNames[key], status] as const
        }),
      )
      const stores = Object.fromEntries(entries) as BatchStatus['stores']
      const states = Object.values(stores).map((s) => s.status)
      const status: StoreState = states.every((s) => s === 'stored')
        ? 'stored'
        : states.includes('failed')
          ? 'failed'
          : 'queued'
      return { ...parent.data, status, stores }
    },
    close: () =>
      Promise.all([batches.close(), ...Object.values(stores).map((q) => q.close())]).then(() => undefined),
  }
}
