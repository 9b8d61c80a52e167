import { type DeviceColumns, toColumns } from '@iotflow/contracts'
import { serviceUrls, waitFor } from '@iotflow/testkit'
import { useTestRedis } from '@iotflow/testkit/use-test-redis'
import { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { readBacklog, readBacklogByPartition } from './backlog/backlog.js'
import { startStoreConsumer, type WriterQueueConfig } from './consume/store-consumer.js'
import { createDeadLetters } from './dead-letters/dead-letters.js'
import { allPartitions, partitionOfDevice, partitionPrefix, queueLayout } from './partitions.js'
import { createBatchEnqueuer, type NewBatch } from './produce/enqueue.js'
import { createGroupCommitEnqueuer } from './produce/group-commit-enqueuer.js'
import { createBatchStatusReader } from './status/batch-status.js'
import { createQueueDepths } from './status/queue-depths.js'

const batch = (deviceId: number, points = 1): NewBatch => ({
  device_id: deviceId,
  received_at: Date.now(),
  points: Array.from({ length: points }, (_, i) => ({ t: 1_800_000_000_000 + i, data: { v: i } })),
})
const silent = { info() {}, warn() {}, error() {} }

/** The device ids of the jobs waiting in a store queue of one partition, per job. */
async function waitingDevices(redis: Redis, queuePrefix: string, queue = 'store-postgres') {
  const ids = await redis.lrange(`{${queuePrefix}}:${queue}:wait`, 0, -1)
  return Promise.all(
    ids.map(async (id) => {
      const data = JSON.parse((await redis.hget(`{${queuePrefix}}:${queue}:${id}`, 'data')) as string)
      return (data.batches as { device_id: number }[]).map((b) => b.device_id)
    }),
  )
}

/** A writer's queue settings: the defaults of writerEnv, on the shared Redis. */
const writerConfig = (prefix: string, partitions: number, subset?: string): WriterQueueConfig => ({
  REDIS_URL: serviceUrls.redis,
  QUEUE_PREFIX: prefix,
  QUEUE_PARTITIONS: partitions,
  ...(subset !== undefined && { WRITER_PARTITIONS: subset }),
  WRITER_CONCURRENCY: 50,
  WRITER_MAX_BATCH_POINTS: 10_000,
  WRITER_LINGER_MS: 5,
  WRITER_SHUTDOWN_DRAIN_MS: 1_000,
  WRITER_MAX_INFLIGHT_WRITES: 2,
  WRITER_LOCK_DURATION_MS: 6_000,
  WRITER_STALLED_INTERVAL_MS: 2_000,
  BACKLOG_MAX_POINTS: 1_000_000,
})

describe('partitioned queues (real Redis)', () => {
  const { redis: connection, more } = useTestRedis('partitions')

  it('with QUEUE_PARTITIONS=1, queue under the key names from before partitions', async () => {
    const redis = connection()
    const prefix = more()
    const enqueuer = createBatchEnqueuer(redis, queueLayout(prefix))
    await enqueuer.enqueueMany([batch(1), batch(2), batch(3)])
    await enqueuer.close()
    const keys = await redis.keys(`{${prefix}*`)
    expect(keys.length).toBeGreaterThan(0)
    // Every key under {prefix}, the backlog counter and the queues as before; none of a partition.
    expect(keys.every((key) => key.startsWith(`{${prefix}}:`))).toBe(true)
    expect(keys).toContain(`{${prefix}}:backlog`)
    expect(keys).toContain(`{${prefix}}:store-postgres:wait`)
    expect(keys).toContain(`{${prefix}}:store-influx:wait`)
    expect(keys).toContain(`{${prefix}}:ingest-batches:waiting-children`)
    expect(await waitingDevices(redis, prefix)).toEqual([[1, 2, 3]])
  })

  it('groups a group commit per partition: each flow holds only devices of its partition, and every reader covers all partitions', async () => {
    const redis = connection()
    const prefix = more()
    const layout = queueLayout(prefix, 4)
    const enqueuer = createGroupCommitEnqueuer(createBatchEnqueuer(redis, layout), {
      maxPoints: 100_000,
      lingerMs: 20,
      maxInFlight: 1,
    })
    const devices = Array.from({ length: 40 }, (_, i) => i + 1)
    const queued = await Promise.all(devices.map((device) => enqueuer.enqueue(batch(device, 3))))
    await enqueuer.close()

    // One gathered group, one flow per partition: a caller's batch id is its partition's flow.
    const flows = new Map<string, number[]>()
    devices.forEach((device, i) => {
      const id = queued[i]?.batchId as string
      flows.set(id, [...(flows.get(id) ?? []), device])
    })
    const partitionsUsed = new Set(devices.map((device) => partitionOfDevice(layout, device)))
    expect(partitionsUsed.size).toBe(4)
    expect(flows.size).toBe(4)
    for (const partition of allPartitions(layout)) {
      const inPartition = devices.filter((device) => partitionOfDevice(layout, device) === partition)
      const jobs = await waitingDevices(redis, partitionPrefix(layout, partition))
      expect(jobs).toHaveLength(1)
      expect(jobs[0]?.sort((a, b) => a - b)).toEqual(inPartition)
      // The parent, both store jobs and the backlog count all carry the partition's hash tag.
      expect(await redis.exists(`{${prefix}:p${partition}}:store-influx:wait`)).toBe(1)
      expect(await redis.hget(`{${prefix}:p${partition}}:backlog`, 'store-influx')).toBe(
        String(inPartition.length * 3),
      )
    }
    expect(await redis.exists(`{${prefix}}:store-postgres:wait`)).toBe(0)

    // The backlog bound sees the sum; the depths add up the partitions; each batch id is found.
    expect(await readBacklog(redis, layout)).toEqual({ 'store-postgres': 120, 'store-influx': 120 })
    expect((await readBacklogByPartition(redis, layout)).map((points) => points['store-postgres'])).toEqual(
      allPartitions(layout).map((p) => 3 * devices.filter((d) => partitionOfDevice(layout, d) === p).length),
    )
    const depths = createQueueDepths(redis, layout)
    expect((await depths.read())['store-postgres']?.waiting).toBe(4)
    expect((await depths.readByPartition()).filter((d) => d.queue === 'store-influx')).toEqual(
      allPartitions(layout).map((partition) => ({
        partition,
        queue: 'store-influx',
        counts: expect.objectContaining({ waiting: 1 }),
      })),
    )
    await depths.close()
    const status = createBatchStatusReader(redis, layout)
    for (const [batchId, inFlow] of flows)
      expect(await status.read(batchId)).toMatchObject({
        batch_id: batchId,
        points: inFlow.length * 3,
        status: 'queued',
      })
    expect(await status.read('00000000-0000-4000-8000-000000000000')).toBeUndefined()
    await status.close()
  })

  it('a writer with WRITER_PARTITIONS consumes only those partitions, the others stay queued, and dead letters are found in every partition', async () => {
    const redis = connection()
    const prefix = more()
    const layout = queueLayout(prefix, 4)
    const enqueuer = createBatchEnqueuer(redis, layout)
    const devices = Array.from({ length: 40 }, (_, i) => i + 1)
    await Promise.all(devices.map((device) => enqueuer.enqueue(batch(device, 2))))
    await enqueuer.close()
    const ofPartitions = (set: number[]) =>
      devices.filter((device) => set.includes(partitionOfDevice(layout, device)))

    const written: number[] = []
    const writeBatch = async (batches: DeviceColumns[]) => {
      // Device 13's batch is refused for good: a dead letter in its partition.
      if (batches.some((b) => b.device_id === 13)) throw new Error('refused')
      written.push(...batches.map((b) => b.device_id))
    }
    const consumer = await startStoreConsumer('storePostgres', writerConfig(prefix, 4, '0,2'), {
      writeBatch,
      classify: () => 'permanent',
      logger: silent,
    })
    const ours = ofPartitions([0, 2]).filter((device) => device !== 13)
    try {
      await waitFor(() => written.length === ours.length, { what: 'partitions 0 and 2 written' })
      // Another look once the writer had time to take anything else.
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(written.sort((a, b) => a - b)).toEqual(ours)
      for (const partition of [1, 3]) {
        const left = (await waitingDevices(redis, partitionPrefix(layout, partition))).flat()
        expect(left.sort((a, b) => a - b)).toEqual(ofPartitions([partition]))
      }
      const ready = await consumer.readiness({})
      expect(Object.keys(ready.backlog?.partitions ?? {})).toEqual(['0', '2'])
      expect(ready.queues?.['store-postgres']).toMatchObject({ waiting: 0 })
    } finally {
      await consumer.close()
    }

    // A writer of every partition (the default) takes the rest.
    const rest = await startStoreConsumer('storePostgres', writerConfig(prefix, 4), {
      writeBatch,
      classify: () => 'permanent',
      logger: silent,
    })
    try {
      await waitFor(() => written.length === devices.length - 1, { what: 'every partition written' })
    } finally {
      await rest.close()
    }

    const deadLetters = createDeadLetters(redis, layout)
    const letters = await deadLetters.list(['storePostgres'])
    expect(letters).toEqual([
      expect.objectContaining({
        queue: 'store-postgres',
        partition: partitionOfDevice(layout, 13),
        deviceIds: [13],
      }),
    ])
    await deadLetters.close()
  })

  it('a writer of several partitions tells their jobs apart though their ids repeat: a refused one fails alone', async () => {
    const redis = connection()
    const prefix = more()
    const layout = queueLayout(prefix, 2)
    const devices = Array.from({ length: 20 }, (_, i) => i + 1)
    const refused = devices.find((device) => partitionOfDevice(layout, device) === 0) as number
    const other = devices.find((device) => partitionOfDevice(layout, device) === 1) as number
    // A job id is unique in its queue only: the same id in both partitions' queues (as BullMQ's own
    // numbering, or a producer's ids, gives).
    for (const [partition, device] of [
      [0, refused],
      [1, other],
    ] as const) {
      const queue = new Queue('store-postgres', {
        connection: redis,
        prefix: `{${partitionPrefix(layout, partition)}}`,
      })
      await queue.add(
        'store',
        { batch_id: `b${device}`, batches: [toColumns(batch(device))] },
        { jobId: 'same' },
      )
      await queue.close()
    }

    const written: number[] = []
    const consumer = await startStoreConsumer('storePostgres', writerConfig(prefix, 2), {
      writeBatch: async (batches) => {
        if (batches.some((b) => b.device_id === refused)) throw new Error('refused')
        written.push(...batches.map((b) => b.device_id))
      },
      classify: () => 'permanent',
      logger: silent,
    })
    const deadLetters = createDeadLetters(redis, layout)
    try {
      await waitFor(
        async () => (await deadLetters.list(['storePostgres'])).length > 0 && written.length > 0,
        {
          what: 'one job written and one dead-lettered',
        },
      )
      expect(written).toEqual([other])
      expect(await deadLetters.list(['storePostgres'])).toEqual([
        expect.objectContaining({ partition: 0, jobId: 'same', deviceIds: [refused] }),
      ])
    } finally {
      await deadLetters.close()
      await consumer.close()
    }
  })
})
