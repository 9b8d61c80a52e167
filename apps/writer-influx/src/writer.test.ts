import { loadWriterInfluxConfig } from '@iotflow/config'
import type { DeviceBatch } from '@iotflow/contracts'
import {
  type BatchEnqueuer,
  bullPrefix,
  createBatchEnqueuer,
  queueCatalog,
  queueLayout,
} from '@iotflow/queue'
import { createLogger } from '@iotflow/runtime'
import { createTestInfluxDatabase, perPointDeviceBatch, serviceUrls, settledJobs } from '@iotflow/testkit'
import { useTestRedis } from '@iotflow/testkit/use-test-redis'
import { Queue } from 'bullmq'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type InfluxWriter, startInfluxWriter } from './writer.js'

const redis = useTestRedis('writer-influx')
let influx: Awaited<ReturnType<typeof createTestInfluxDatabase>>
let enqueuer: BatchEnqueuer
let queue: Queue
let writer: InfluxWriter

beforeAll(async () => {
  influx = await createTestInfluxDatabase()
  enqueuer = createBatchEnqueuer(redis.redis(), queueLayout(redis.prefix))
  queue = new Queue(queueCatalog.storeInflux.name, {
    connection: redis.redis(),
    prefix: bullPrefix(redis.prefix),
  })
  const config = loadWriterInfluxConfig({
    REDIS_URL: serviceUrls.redis,
    QUEUE_PREFIX: redis.prefix,
    INFLUX_API: 'v1',
    INFLUX_URL: influx.url,
    INFLUX_DATABASE: influx.database,
    WRITER_LINGER_MS: '10',
  })
  writer = await startInfluxWriter(config, createLogger('writer-influx', 'silent'))
})

afterAll(async () => {
  await writer?.close()
  await enqueuer?.close()
  await queue?.close()
  await influx?.drop()
})

const T0 = Date.UTC(2026, 5, 1, 12)
const batchOf = (deviceId: number, points: DeviceBatch['points']): DeviceBatch => ({
  device_id: deviceId,
  device_type: 'sensor',
  received_at: Date.now(),
  points,
})

const settled = () => settledJobs(queue)

const fieldsOf = async (deviceId: number, field: string) =>
  (await influx.rowsOf(deviceId)).map((row) => [row.time, row[field]])

describe('the InfluxDB writer', () => {
  it('stores a point once per (device, time), however often its batch is queued', async () => {
    const points = [
      { t: T0, data: { temperature: 21.5 } },
      { t: T0 + 1000, data: { temperature: 21.7 } },
    ]
    for (let i = 0; i < 3; i++) await enqueuer.enqueue(batchOf(1, points))
    expect(await settled()).toMatchObject({ failed: 0 })
    expect(await fieldsOf(1, 'temperature')).toEqual([
      [T0, 21.5],
      [T0 + 1000, 21.7],
    ])
  })

  it('stores a job queued with a type and metadata per point (the shape before 2026-11-30)', async () => {
    const { batch } = perPointDeviceBatch(6, T0)
    await queue.add(queueCatalog.storeInflux.jobName, {
      batch_id: 'queued-before-dictionaries',
      batches: [batch],
    })
    expect(await settled()).toMatchObject({ failed: 0 })
    expect(await fieldsOf(6, 'environment.temperature')).toEqual([
      [T0, 21.5],
      [T0 + 1, null],
      [T0 + 2, 22.5],
    ])
    expect(await fieldsOf(6, 'v')).toEqual([
      [T0, null],
      [T0 + 1, 1],
      [T0 + 2, null],
    ])
  })

  it('fails a job InfluxDB refuses for good (a field type conflict) on its own; the batches queued with it are stored', async () => {
    // `level` is a number in this shard: a string `level` can never be stored there.
    await influx.writeLines([`telemetry,device_id=9 level=1 ${T0}`])
    const [, poison] = await enqueuer.enqueueMany([
      batchOf(2, [{ t: T0, data: { level: 2 } }]),
      batchOf(3, [{ t: T0, data: { level: 'high' } }]),
    ])
    await enqueuer.enqueue(batchOf(4, [{ t: T0, data: { level: 4 } }]))
    expect(await settled()).toMatchObject({ failed: 1 })

    expect(await fieldsOf(2, 'level')).toEqual([[T0, 2]])
    expect(await fieldsOf(3, 'level')).toEqual([])
    expect(await fieldsOf(4, 'level')).toEqual([[T0, 4]])
    const [failed] = await queue.getFailed()
    expect(failed?.data.batch_id).toBe(poison?.batchId)
    expect(failed?.attemptsMade).toBe(1) // refused for good: no retry spent on it
    expect(failed?.failedReason).toMatch(/refused for good \(device 3\).*field type conflict/)
  })

  it('is ready while Redis and InfluxDB answer', async () => {
    expect((await writer.ready()).dependencies).toEqual({
      redis: { status: 'up' },
      influxdb: { status: 'up' },
    })
  })
})
