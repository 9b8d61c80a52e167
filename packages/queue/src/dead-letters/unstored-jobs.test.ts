import { serviceUrls } from '@iotflow/testkit'
import { useTestRedis } from '@iotflow/testkit/use-test-redis'
import { Worker } from 'bullmq'
import { describe, expect, it } from 'vitest'
import { bullPrefix, queueCatalog } from '../catalog.js'
import { queueLayout } from '../partitions.js'
import { createBatchEnqueuer, type NewBatch } from '../produce/enqueue.js'
import { createRedisConnection } from '../redis/connection.js'
import { createUnstoredJobs } from './unstored-jobs.js'

const test = useTestRedis('unstored')
const batchOf = (deviceId: number, t: number): NewBatch => ({
  device_id: deviceId,
  received_at: Date.now(),
  points: [{ t, data: { temperature: 20 } }],
})

describe('unevenBatches', () => {
  it('says what a store lacks of the batches the other store has stored', async () => {
    const redis = test.redis()
    const layout = queueLayout(test.more())
    const enqueuer = createBatchEnqueuer(redis, layout)
    const unstored = createUnstoredJobs(redis, layout)
    const { batchId: stored } = await enqueuer.enqueue(batchOf(1, 1_800_000_000_000))
    await enqueuer.enqueue(batchOf(2, 1_800_000_000_000))
    // PostgreSQL's writer stores the first batch (its job completes and is removed); InfluxDB's none.
    const connection = createRedisConnection(serviceUrls.redis, 'worker')
    const postgres = new Worker(queueCatalog.storePostgres.name, null, {
      connection,
      prefix: bullPrefix(layout.prefix),
    })
    const job = await postgres.getNextJob('manual')
    expect(job?.data.batch_id).toBe(stored)
    await job?.moveToCompleted({ stored: 1 }, 'manual', false)
    await postgres.close()
    await connection.quit()
    const { lacking } = await unstored.unevenBatches()
    expect(lacking['store-postgres']).toEqual([])
    expect(lacking['store-influx']?.map(({ payload }) => payload.batch_id)).toEqual([stored])
    await unstored.close()
    await enqueuer.close()
  })

  it('never takes a batch queued while it reads for one a store has stored', async () => {
    const redis = test.redis()
    const layout = queueLayout(test.more())
    const enqueuer = createBatchEnqueuer(redis, layout)
    const unstored = createUnstoredJobs(redis, layout)
    // No writer runs: every batch is unstored in both stores, so neither lacks one, however the
    // reads of the two store queues fall between the batches being queued.
    let queuing = true
    const producers = Array.from({ length: 8 }, async (_, device) => {
      for (let t = 1_800_000_000_000; queuing; t += 1000) await enqueuer.enqueue(batchOf(device, t))
    })
    const seen: number[] = []
    for (let read = 0; read < 50; read++) {
      const { lacking } = await unstored.unevenBatches()
      seen.push((lacking['store-postgres']?.length ?? 0) + (lacking['store-influx']?.length ?? 0))
    }
    queuing = false
    await Promise.all(producers)
    expect(seen.every((n) => n === 0)).toBe(true)
    const ids = await unstored.ids()
    expect(ids['store-postgres']?.length).toBeGreaterThan(50)
    await unstored.close()
    await enqueuer.close()
  })
})
