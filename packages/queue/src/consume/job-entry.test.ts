import { type DeviceColumns, toColumns } from '@iotflow/contracts'
import { serviceUrls, waitFor } from '@iotflow/testkit'
import { useTestRedis } from '@iotflow/testkit/use-test-redis'
import { Queue } from 'bullmq'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { bullPrefix } from '../catalog.js'
import { createBatchingWorker } from './batching-worker.js'

const { redis: producer, prefix } = useTestRedis('job-entry')
const silent = { info() {}, warn() {}, error() {} }
let worker: Redis

beforeAll(() => {
  worker = new Redis(serviceUrls.redis, { maxRetriesPerRequest: null })
})
afterAll(async () => {
  await worker.quit()
})

it('a writer stores a job queued before columns as columns, and dead-letters data no schema matches', async () => {
  const points = [{ t: 1_800_000_000_000, data: { v: 1 } }]
  const queue = new Queue('store-postgres', { connection: producer(), prefix: bullPrefix(prefix) })
  await queue.add('store', { batch_id: 'old', batches: [{ device_id: 3, received_at: 1, points }] })
  const bad = await queue.add('store', { batch_id: 'bad', batches: [{ device_id: 4 }] }, { attempts: 5 })
  const written: DeviceColumns[] = []
  const writer = createBatchingWorker({
    queue: 'storePostgres',
    connection: worker,
    queuePrefixes: [prefix],
    concurrency: 10,
    maxBatchPoints: 1000,
    lingerMs: 5,
    maxInFlightWrites: 1,
    shutdownDrainMs: 1000,
    lockDurationMs: 6000,
    stalledIntervalMs: 2000,
    writeBatch: async (batches) => {
      written.push(...batches)
    },
    classify: () => 'transient',
    logger: silent,
  })
  await waitFor(async () => written.length === 1 && (await queue.getFailedCount()) === 1, {
    what: 'the old job stored and the bad one failed',
  })
  expect(written).toEqual([toColumns({ device_id: 3, received_at: 1, points })])
  const failed = await queue.getJob(bad.id as string)
  expect(failed?.failedReason).toMatch(/does not match its schema: \/batches\/0/)
  expect(failed?.attemptsMade).toBe(1) // refused for good at once, not retried
  await writer.close()
  await queue.close()
})
