import { redisTargetOf } from '@iotflow/config'
import { toColumns } from '@iotflow/contracts'
import { serviceUrls, startPrivateRedis, startPrivateRedisCluster, waitFor } from '@iotflow/testkit'
import { useTestRedis } from '@iotflow/testkit/use-test-redis'
import { Queue, UnrecoverableError, Worker } from 'bullmq'
import type { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { readBacklog } from '../backlog/backlog.js'
import { bullPrefix, queueCatalog } from '../catalog.js'
import type { FailureKind } from '../consume/failure-isolation.js'
import type { WriterQueueConfig } from '../consume/store-consumer.js'
import { createDeadLetters } from '../dead-letters/dead-letters.js'
import { partitionOfDevice, partitionPrefix, queueLayout } from '../partitions.js'
import { createBatchEnqueuer, type NewBatch } from '../produce/enqueue.js'
import { createRedisConnection, waitForReady } from '../redis/connection.js'
import { ALERT_STREAM_GROUP, alertStreamKey, ensureAlertStreamGroup } from './alert-stream-keys.js'
import { startAlertStreamConsumer } from './alert-stream-service.js'
import { forgetGoneConsumers } from './gone-consumers.js'

const { redis: connection, more } = useTestRedis('alertstream')
const silent = { info() {}, warn() {}, error() {} }
const batch = (deviceId: number): NewBatch => ({
  device_id: deviceId,
  received_at: Date.now(),
  points: [{ t: 1_800_000_000_000, data: { temperature: deviceId } }],
})

/** The evaluator's queue settings (its defaults), on the shared Redis; a short lock where a test needs one. */
const evaluatorConfig = (prefix: string, partitions = 1, more: Partial<WriterQueueConfig> = {}) => ({
  REDIS_URL: serviceUrls.redis,
  QUEUE_PREFIX: prefix,
  QUEUE_PARTITIONS: partitions,
  WRITER_CONCURRENCY: 50,
  WRITER_MAX_BATCH_POINTS: 10_000,
  WRITER_LINGER_MS: 5,
  WRITER_SHUTDOWN_DRAIN_MS: 1_000,
  WRITER_MAX_INFLIGHT_WRITES: 1,
  WRITER_LOCK_DURATION_MS: 6_000,
  WRITER_STALLED_INTERVAL_MS: 2_000,
  ...more,
})

/** An evaluator consuming `prefix` whose judging records the device ids it was given, or fails as told. */
async function startRecordingConsumer(
  config: WriterQueueConfig,
  options: {
    fail?: (deviceIds: number[]) => Error | undefined
    classify?: (error: Error) => FailureKind
  } = {},
  retry = {},
) {
  const judged: number[] = []
  const consumer = await startAlertStreamConsumer(
    config,
    {
      writeBatch: async (batches) => {
        const devices = batches.map((b) => b.device_id)
        const failure = options.fail?.(devices)
        if (failure) throw failure
        judged.push(...devices)
      },
      classify: options.classify ?? (() => 'transient'),
      logger: silent,
    },
    retry,
  )
  return { judged, consumer }
}

const streamLength = (redis: Redis, queuePrefix: string) => redis.xlen(alertStreamKey(queuePrefix))
const pendingCount = async (redis: Redis, queuePrefix: string) =>
  Number(((await redis.xpending(alertStreamKey(queuePrefix), ALERT_STREAM_GROUP)) as [number])[0])

describe('the alert stream (real Redis)', () => {
  it('is added in the fan-out’s MULTI: a MULTI whose XADD is refused queues nothing of the batch', async () => {
    // A producer whose ACL lets it write the queues' and the backlog's keys but not the alert stream:
    // the XADD is refused as the MULTI is queued (NOPERM), so EXEC discards the whole MULTI.
    const server = await startPrivateRedis()
    const prefix = more()
    const tag = bullPrefix(prefix)
    const admin = createRedisConnection(server.url, 'producer')
    await waitForReady(admin)
    const allowed = ['ingest-batches:*', 'store-postgres:*', 'store-influx:*', 'backlog'].map(
      (k) => `~${tag}:${k}`,
    )
    await admin.call('ACL', 'SETUSER', 'producer', 'on', '>producer-password', '+@all', ...allowed)
    const redis = createRedisConnection(
      `redis://producer:producer-password@127.0.0.1:${server.port}`,
      'producer',
    )
    await waitForReady(redis)
    let alertsOn = false
    const enqueuer = createBatchEnqueuer(redis, queueLayout(prefix), {}, { alertFanOut: () => alertsOn })
    const queued = async () => ({
      keys: (await admin.keys('*')).sort(),
      waiting: await admin.llen(`${tag}:store-postgres:wait`),
      backlog: await readBacklog(admin, queueLayout(prefix)),
    })
    try {
      // Without the alert entry, the fan-out goes through for that producer.
      await enqueuer.enqueue(batch(1))
      const before = await queued()
      expect(before).toMatchObject({ waiting: 1, backlog: { 'store-postgres': 1, 'store-influx': 1 } })
      alertsOn = true
      await expect(enqueuer.enqueue(batch(2))).rejects.toThrow(/EXECABORT/)
      expect(await queued()).toEqual(before)
      expect(before.keys.some((key) => key.includes('alert-stream'))).toBe(false)
    } finally {
      await enqueuer.close()
      await Promise.all([redis.quit(), admin.quit()])
      await server.stop()
    }
  })

  it('is judged, then acknowledged and deleted: the stores’ jobs and the entry arrive together', async () => {
    const redis = connection()
    const prefix = more()
    const enqueuer = createBatchEnqueuer(redis, queueLayout(prefix), {}, { alertFanOut: () => true })
    await enqueuer.enqueueMany([batch(1), batch(2)])
    await enqueuer.enqueue(batch(3))
    expect(await redis.llen(`${bullPrefix(prefix)}:store-influx:wait`)).toBe(2)
    expect(await streamLength(redis, prefix)).toBe(2)
    const { judged, consumer } = await startRecordingConsumer(evaluatorConfig(prefix))
    try {
      await waitFor(async () => (await streamLength(redis, prefix)) === 0, { what: 'the entries judged' })
      expect(judged).toEqual([1, 2, 3])
      expect(await pendingCount(redis, prefix)).toBe(0)
      expect((await consumer.readiness({})).queues).toEqual({
        'alert-evaluate': { waiting: 0, active: 0, delayed: 0, failed: 0, prioritized: 0 },
      })
    } finally {
      await consumer.close()
      await enqueuer.close()
    }
  })

  it('takes over the entries of a consumer that died holding them (XAUTOCLAIM after the lock duration)', async () => {
    const redis = connection()
    const prefix = more()
    const enqueuer = createBatchEnqueuer(redis, queueLayout(prefix), {}, { alertFanOut: () => true })
    for (const device of [1, 2, 3]) await enqueuer.enqueue(batch(device))
    // A consumer reads them and dies: they stay pending, its.
    await ensureAlertStreamGroup(redis, alertStreamKey(prefix))
    await redis.xreadgroup(
      'GROUP',
      ALERT_STREAM_GROUP,
      'dead',
      'COUNT',
      10,
      'STREAMS',
      alertStreamKey(prefix),
      '>',
    )
    expect(await pendingCount(redis, prefix)).toBe(3)
    const started = Date.now()
    const { judged, consumer } = await startRecordingConsumer(
      evaluatorConfig(prefix, 1, { WRITER_LOCK_DURATION_MS: 2_000, WRITER_STALLED_INTERVAL_MS: 500 }),
    )
    try {
      await waitFor(async () => (await streamLength(redis, prefix)) === 0, {
        timeoutMs: 15_000,
        what: 'the dead consumer’s entries judged',
      })
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_000) // not before they were idle
      expect(judged.sort()).toEqual([1, 2, 3])
      expect(await pendingCount(redis, prefix)).toBe(0)
    } finally {
      await consumer.close()
      await enqueuer.close()
    }
  })

  it('forgets the consumers of the group that hold nothing and went silent, not those holding entries', async () => {
    const redis = connection()
    const prefix = more()
    const key = alertStreamKey(prefix)
    await ensureAlertStreamGroup(redis, key)
    await redis.xadd(key, '*', 'data', '{}')
    await redis.xgroup('CREATECONSUMER', key, ALERT_STREAM_GROUP, 'gone')
    await redis.xreadgroup('GROUP', ALERT_STREAM_GROUP, 'holding', 'COUNT', 1, 'STREAMS', key, '>')
    await new Promise((resolve) => setTimeout(resolve, 120))
    await redis.xgroup('CREATECONSUMER', key, ALERT_STREAM_GROUP, 'live')
    expect(await forgetGoneConsumers(redis, key, 100)).toEqual(['gone'])
    const names = ((await redis.xinfo('CONSUMERS', key, ALERT_STREAM_GROUP)) as string[][]).map((c) => c[1])
    expect(names.sort()).toEqual(['holding', 'live'])
  })

  it('dead-letters what is refused for good (only the refused device batch), lists it and replays it', async () => {
    const redis = connection()
    const prefix = more()
    const enqueuer = createBatchEnqueuer(redis, queueLayout(prefix), {}, { alertFanOut: () => true })
    let refusing = true
    const { judged, consumer } = await startRecordingConsumer(evaluatorConfig(prefix), {
      fail: (devices) => (refusing && devices.includes(13) ? new Error('refused: bad value') : undefined),
      classify: () => 'permanent',
    })
    const deadLetters = createDeadLetters(redis, queueLayout(prefix))
    try {
      const { batchId } = (await enqueuer.enqueueMany([batch(12), batch(13)]))[0] as { batchId: string }
      await waitFor(async () => (await deadLetters.list(['alertEvaluate'])).length === 1, {
        what: 'a dead letter',
      })
      expect(judged).toEqual([12])
      const [letter] = await deadLetters.list(['alertEvaluate'])
      expect(letter).toMatchObject({
        queue: 'alert-evaluate',
        partition: 0,
        batchId,
        deviceIds: [13],
        points: 1,
        failedReason: expect.stringContaining('refused: bad value'),
      })
      expect(await streamLength(redis, prefix)).toBe(0)
      expect((await consumer.readiness({})).queues?.['alert-evaluate']?.failed).toBe(1)

      refusing = false
      const report = await deadLetters.replay({
        queues: ['alertEvaluate'],
        jobIds: [letter?.jobId as string],
      })
      expect(report).toEqual({
        replayed: [{ queue: 'alert-evaluate', partition: 0, jobId: letter?.jobId }],
        notFound: [],
      })
      await waitFor(() => judged.includes(13), { what: 'the replayed dead letter judged' })
      expect(await deadLetters.list(['alertEvaluate'])).toEqual([])
      await waitFor(async () => (await streamLength(redis, prefix)) === 0, {
        what: 'the replay acknowledged',
      })
    } finally {
      await deadLetters.close()
      await consumer.close()
      await enqueuer.close()
    }
  })

  it('retries a transient failure with backoff, and dead-letters it once out of attempts', async () => {
    const redis = connection()
    const prefix = more()
    const enqueuer = createBatchEnqueuer(redis, queueLayout(prefix), {}, { alertFanOut: () => true })
    const tries = new Map<number, number>()
    const { judged, consumer } = await startRecordingConsumer(
      evaluatorConfig(prefix),
      {
        fail: (devices) => {
          for (const device of devices) tries.set(device, (tries.get(device) ?? 0) + 1)
          if (devices.includes(21) && (tries.get(21) ?? 0) <= 2) return new Error('deadlock, try again')
          return devices.includes(22) ? new Error('always failing') : undefined
        },
        classify: () => 'transient',
      },
      { attempts: 3, backoffMs: 50 },
    )
    const deadLetters = createDeadLetters(redis, queueLayout(prefix))
    try {
      await enqueuer.enqueue(batch(21))
      await enqueuer.enqueue(batch(22))
      await waitFor(
        async () => (await deadLetters.list(['alertEvaluate'])).length === 1 && judged.includes(21),
        {
          what: 'one entry judged after retries, one dead-lettered',
        },
      )
      expect(judged).toEqual([21])
      expect(await deadLetters.list(['alertEvaluate'])).toEqual([
        expect.objectContaining({ deviceIds: [22], attemptsMade: 3, failedReason: 'always failing' }),
      ])
      expect(await streamLength(redis, prefix)).toBe(0)
    } finally {
      await deadLetters.close()
      await consumer.close()
      await enqueuer.close()
    }
  })

  it('keeps each partition’s entries under its hash tag, and an evaluator judges only its partitions', async () => {
    const redis = connection()
    const prefix = more()
    const layout = queueLayout(prefix, 3)
    const enqueuer = createBatchEnqueuer(redis, layout, {}, { alertFanOut: () => true })
    const devices = Array.from({ length: 30 }, (_, i) => i + 1)
    await enqueuer.enqueueMany(devices.map(batch))
    for (const partition of [0, 1, 2]) {
      expect(alertStreamKey(partitionPrefix(layout, partition))).toBe(
        `{${prefix}:p${partition}}:alert-stream`,
      )
      expect(await streamLength(redis, partitionPrefix(layout, partition))).toBe(1)
    }
    const { judged, consumer } = await startRecordingConsumer({
      ...evaluatorConfig(prefix, 3),
      WRITER_PARTITIONS: '0,2',
    })
    try {
      const ours = devices.filter((device) => partitionOfDevice(layout, device) !== 1)
      await waitFor(() => judged.length === ours.length, { what: 'partitions 0 and 2 judged' })
      expect(judged.sort((a, b) => a - b)).toEqual(ours)
      expect(await streamLength(redis, partitionPrefix(layout, 0))).toBe(0)
      expect(await streamLength(redis, partitionPrefix(layout, 1))).toBe(1)
      expect(await streamLength(redis, partitionPrefix(layout, 2))).toBe(0)
    } finally {
      await consumer.close()
      await enqueuer.close()
    }
  })

  it('on a Redis Cluster, reads each partition’s stream (a slot each) and judges every batch', {
    timeout: 120_000,
  }, async () => {
    const cluster = await startPrivateRedisCluster({ replicasPerMaster: 0 })
    const producer = createRedisConnection(redisTargetOf(cluster.env()), 'producer')
    const prefix = more()
    const layout = queueLayout(prefix, 3)
    const enqueuer = createBatchEnqueuer(producer, layout, {}, { alertFanOut: () => true })
    let consumer: Awaited<ReturnType<typeof startRecordingConsumer>>['consumer'] | undefined
    try {
      await waitForReady(producer)
      const devices = Array.from({ length: 30 }, (_, i) => i + 1)
      await enqueuer.enqueueMany(devices.map(batch))
      const { REDIS_URL: _single, ...config } = evaluatorConfig(prefix, 3)
      const started = await startRecordingConsumer({ ...config, ...cluster.env() })
      consumer = started.consumer
      await waitFor(() => started.judged.length === devices.length, { what: 'every partition judged' })
      expect(started.judged.sort((a, b) => a - b)).toEqual(devices)
      for (const partition of [0, 1, 2])
        await waitFor(
          async () => (await producer.xlen(alertStreamKey(partitionPrefix(layout, partition)))) === 0,
          {
            what: `partition ${partition}'s entries acknowledged`,
          },
        )
    } finally {
      await consumer?.close()
      await enqueuer.close()
      await producer.quit()
      await cluster.dispose()
    }
  })

  it('judges the jobs of the legacy alert-evaluate queue at start, and replays its failed jobs into the stream', async () => {
    const redis = connection()
    const prefix = more()
    const legacy = new Queue(queueCatalog.alertEvaluate.name, {
      connection: redis,
      prefix: bullPrefix(prefix),
    })
    const payload = (device: number) => ({ batch_id: `b${device}`, batches: [toColumns(batch(device))] })
    // A job that failed for good before the upgrade: a dead letter of the old queue.
    const failed = await legacy.add('evaluate', payload(33))
    const worker = createRedisConnection(serviceUrls.redis, 'worker')
    const refuser = new Worker(
      legacy.name,
      async () => {
        throw new UnrecoverableError('refused before the upgrade')
      },
      { connection: worker, prefix: bullPrefix(prefix) },
    )
    await waitFor(async () => (await legacy.getFailedCount()) === 1, { what: 'the old job failed' })
    await refuser.close()
    await legacy.add('evaluate', payload(31))
    await legacy.add('evaluate', payload(32), { delay: 600_000 }) // waiting for a retry
    const { judged, consumer } = await startRecordingConsumer(evaluatorConfig(prefix))
    const deadLetters = createDeadLetters(redis, queueLayout(prefix))
    try {
      expect(judged.sort()).toEqual([31, 32])
      expect(await legacy.getJobCounts('waiting', 'active', 'delayed')).toMatchObject({
        waiting: 0,
        active: 0,
        delayed: 0,
      })
      const [letter] = await deadLetters.list(['alertEvaluate'])
      expect(letter).toMatchObject({ jobId: failed.id, deviceIds: [33] })
      await deadLetters.replay({ queues: ['alertEvaluate'] })
      await waitFor(() => judged.includes(33), { what: 'the legacy dead letter judged from the stream' })
      expect(await deadLetters.list(['alertEvaluate'])).toEqual([])
    } finally {
      await deadLetters.close()
      await consumer.close()
      await legacy.close()
      await worker.quit()
    }
  })
})
