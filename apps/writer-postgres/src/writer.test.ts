import { loadWriterPostgresConfig } from '@iotflow/config'
import type { DeviceBatch } from '@iotflow/contracts'
import {
  type BatchEnqueuer,
  bullPrefix,
  createBatchEnqueuer,
  queueCatalog,
  queueLayout,
} from '@iotflow/queue'
import { createLogger } from '@iotflow/runtime'
import {
  createTestDatabase,
  mixedSeries,
  perPointDeviceBatch,
  serviceUrls,
  settledJobs,
  type TestDatabase,
} from '@iotflow/testkit'
import { useTestRedis } from '@iotflow/testkit/use-test-redis'
import { Queue } from 'bullmq'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type PostgresWriter, startPostgresWriter } from './writer.js'

const redis = useTestRedis('writer-pg')
const queuePrefix = redis.prefix
let db: TestDatabase
let enqueuer: BatchEnqueuer
let queue: Queue
let writer: PostgresWriter

beforeAll(async () => {
  db = await createTestDatabase()
  enqueuer = createBatchEnqueuer(redis.redis(), queueLayout(queuePrefix))
  queue = new Queue(queueCatalog.storePostgres.name, {
    connection: redis.redis(),
    prefix: bullPrefix(queuePrefix),
  })
  const config = loadWriterPostgresConfig({
    REDIS_URL: serviceUrls.redis,
    DATABASE_URL: db.url,
    QUEUE_PREFIX: queuePrefix,
    MIGRATE_ON_START: 'false',
    WRITER_LINGER_MS: '10',
  })
  writer = await startPostgresWriter(config, createLogger('writer-postgres', 'silent'))
})

afterAll(async () => {
  await writer?.close()
  await enqueuer?.close()
  await queue?.close()
  await db?.drop()
})

const T0 = Date.UTC(2026, 5, 1, 12)
const batchOf = (deviceId: number, points: DeviceBatch['points']): DeviceBatch => ({
  device_id: deviceId,
  device_type: 'sensor',
  received_at: Date.now(),
  points,
})

const settled = () => settledJobs(queue)

const rowsOf = (deviceId: number) =>
  db.sql<{ t: number; data: Record<string, unknown> }[]>`
    SELECT (extract(epoch FROM time) * 1000)::float8 AS t, data
    FROM telemetry WHERE device_id = ${deviceId} ORDER BY time`

/** Each row as stored: time, type, fields and metadata. */
const storedOf = (deviceId: number) =>
  db.sql<
    {
      t: number
      type: string | null
      data: Record<string, unknown>
      metadata: Record<string, unknown> | null
    }[]
  >`
    SELECT (extract(epoch FROM time) * 1000)::float8 - ${T0} AS t, type, data, metadata
    FROM telemetry WHERE device_id = ${deviceId} ORDER BY time`

describe('the PostgreSQL writer', () => {
  it('stores a point once per (device, time), however often its batch is queued', async () => {
    const points = [
      { t: T0, data: { temperature: 21.5 } },
      { t: T0 + 1000, data: { temperature: 21.7 } },
    ]
    // The same batch three times: as a producer retrying after a lost acknowledgement would queue it.
    for (let i = 0; i < 3; i++) await enqueuer.enqueue(batchOf(1, points))
    expect(await settled()).toMatchObject({ failed: 0 })
    expect(await rowsOf(1)).toEqual([
      { t: T0, data: { temperature: 21.5 } },
      { t: T0 + 1000, data: { temperature: 21.7 } },
    ])
  })

  it('stores mixed series of a device as sent: two measurements, two tag sets, points without metadata', async () => {
    // Two requests of the device in one job: each with its own dictionaries, merged into one set of rows.
    const { requests, stored } = mixedSeries(T0)
    await enqueuer.enqueueMany(requests.map((points) => batchOf(5, points)))
    expect(await settled()).toMatchObject({ failed: 0 })
    expect(await storedOf(5)).toEqual(stored)
  })

  it('stores a job queued with a type and metadata per point (the shape before 2026-11-30) as sent', async () => {
    const { batch, stored } = perPointDeviceBatch(6, T0)
    await queue.add(queueCatalog.storePostgres.jobName, {
      batch_id: 'queued-before-dictionaries',
      batches: [batch],
    })
    expect(await settled()).toMatchObject({ failed: 0 })
    expect(await storedOf(6)).toEqual(stored)
  })

  it('fails a job PostgreSQL refuses for good on its own; the batches queued with it are stored', async () => {
    // jsonb refuses the NUL character: a device batch that can never be stored (the contract refuses
    // it at the door; a job queued by an older producer may still carry one).
    const [, poisonId] = await enqueuer.enqueueMany([
      batchOf(2, [{ t: T0, data: { note: 'fine' } }]),
      batchOf(3, [{ t: T0, data: { note: 'nul \u0000 inside' } }]),
    ])
    await enqueuer.enqueue(batchOf(4, [{ t: T0, data: { note: 'also fine' } }]))
    expect(await settled()).toMatchObject({ failed: 1 })

    expect(await rowsOf(2)).toEqual([{ t: T0, data: { note: 'fine' } }])
    expect(await rowsOf(3)).toEqual([])
    expect(await rowsOf(4)).toEqual([{ t: T0, data: { note: 'also fine' } }])
    const [failed] = await queue.getFailed()
    expect(failed?.data.batch_id).toBe(poisonId?.batchId)
    expect(failed?.attemptsMade).toBe(1) // refused for good: no retry spent on it
    expect(failed?.failedReason).toMatch(/refused for good \(device 3\)/)
  })

  it('is ready while Redis and PostgreSQL answer', async () => {
    expect((await writer.ready()).dependencies).toEqual({
      redis: { status: 'up' },
      postgres: { status: 'up' },
    })
  })
})
