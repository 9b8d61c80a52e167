import {
  bullPrefix,
  createDeadLetters,
  createRedisConnection,
  queueCatalog,
  queueLayout,
} from '@iotflow/queue'
import { serviceUrls, waitFor } from '@iotflow/testkit'
import { afterAll, expect, it } from 'vitest'
import { dlqReplay as runDlqReplay } from './support/dlq-replay.js'
import { usePipelineFixture } from './support/fixture.js'
import { ADMIN_TOKEN } from './support/pipeline.js'

// The gateway queues store jobs with 3 attempts and a 400 ms first backoff (the catalog's policy
// otherwise: exponential, jitter ±50 %), so a job failing transiently is dead after about a second.
// Group commit queues requests together until 53 points wait (or 1 s passed): the second test's
// requests of 3 and 50 points share one job.
const ATTEMPTS = 3
const BACKOFF_MS = 400
const fixture = usePipelineFixture({
  writers: true,
  env: {
    STORE_JOB_ATTEMPTS: String(ATTEMPTS),
    STORE_JOB_BACKOFF_MS: String(BACKOFF_MS),
    GROUP_COMMIT_MAX_POINTS: '53',
    GROUP_COMMIT_LINGER_MS: '1000',
  },
})

const redis = createRedisConnection(serviceUrls.redis, 'worker')
afterAll(() => redis.quit())

/** `pnpm dlq:replay` on this pipeline's queues. */
const dlqReplay = (...args: string[]) => runDlqReplay(fixture.pipeline.queuePrefix, ...args)

const pointsAt = (start: number, count: number) =>
  Array.from({ length: count }, (_, i) => ({ timestamp: start + i, data: { level: i + 0.5 } }))

async function batchIdOf(response: Response) {
  expect(response.status).toBe(202)
  return ((await response.json()) as { batch_id: string }).batch_id
}

async function statusOf(batchId: string) {
  const response = await fetch(`${fixture.pipeline.baseUrl}/api/v1/ingest/${batchId}`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  })
  expect(response.status).toBe(200)
  return (await response.json()) as {
    status: string
    stores: Record<string, { status: string; attempts: number; error?: string }>
  }
}

/**
 * Makes PostgreSQL raise serialization_failure (SQLSTATE 40001) on every row of the device, which
 * the writer classifies as transient: retried, never refused for good, never "store down". Undone by
 * dropping the trigger.
 */
async function failTransiently(deviceId: number) {
  await fixture.db.sql.unsafe(`
    CREATE OR REPLACE FUNCTION fail_transiently() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'simulated serialization failure for device %', NEW.device_id USING ERRCODE = '40001';
    END $$`)
  await fixture.db.sql.unsafe(`
    CREATE TRIGGER fail_transiently BEFORE INSERT ON telemetry FOR EACH ROW
    WHEN (NEW.device_id = ${deviceId}) EXECUTE FUNCTION fail_transiently()`)
}

const rowsOf = (deviceId: number) =>
  fixture.db.sql<{ t: number; level: number }[]>`
    SELECT (extract(epoch FROM time) * 1000)::float8 AS t, (data->>'level')::float8 AS level
    FROM telemetry WHERE device_id = ${deviceId} ORDER BY time`

/** The dead letter of store-postgres carrying `batchId`, once there is one. */
async function deadLetterOf(batchId: string) {
  const deadLetters = createDeadLetters(redis, queueLayout(fixture.pipeline.queuePrefix))
  try {
    return (await deadLetters.list(['storePostgres'])).find((letter) => letter.batchId === batchId)
  } finally {
    await deadLetters.close()
  }
}

/** The options a store-postgres job was queued with, as BullMQ keeps them in the job's hash. */
async function queuedOptionsOf(jobId: string) {
  const key = `${bullPrefix(fixture.pipeline.queuePrefix)}:${queueCatalog.storePostgres.name}:${jobId}`
  return JSON.parse((await redis.hget(key, 'opts')) ?? '{}') as Record<string, unknown>
}

/** The events BullMQ recorded for one job in its queue's event stream, with their Redis time (ms). */
async function eventsOf(jobId: string) {
  const key = `${bullPrefix(fixture.pipeline.queuePrefix)}:${queueCatalog.storePostgres.name}:events`
  const entries = await redis.xrange(key, '-', '+')
  return entries
    .map(([id, fields]) => {
      const event: Record<string, string> = {}
      for (let i = 0; i < fields.length; i += 2) event[fields[i] as string] = fields[i + 1] as string
      return { ...event, at: Number(id.split('-')[0]) } as Record<string, string> & { at: number }
    })
    .filter((event) => event.jobId === jobId)
}

it('retries a batch PostgreSQL fails transiently with exponential backoff, keeps it failed after exactly the configured attempts with its error while other devices flow, and stores it once replayed', async () => {
  const { db, influx, pipeline } = fixture
  const [failing, healthy] = [await pipeline.registerDevice(), await pipeline.registerDevice()]
  await failTransiently(failing.id)

  const failingTime = Date.UTC(2026, 10, 4)
  const failingBatch = await batchIdOf(
    await pipeline.send(failing.apiKey, { points: pointsAt(failingTime, 3) }),
  )

  // Its first attempt failed and it waits for the next (the status says so, with the error): the
  // other device sends meanwhile.
  const retrying = await waitFor(
    async () => {
      const { stores } = await statusOf(failingBatch)
      return stores.postgres?.attempts !== undefined && stores.postgres.attempts >= 1 && stores.postgres
    },
    { timeoutMs: 15_000, intervalMs: 20, what: 'the first attempt to fail' },
  )
  const sentMeanwhileAt = Date.now()
  const healthyBatch = await batchIdOf(
    await pipeline.send(healthy.apiKey, { points: pointsAt(Date.UTC(2026, 10, 5), 100) }),
  )
  expect(retrying).toEqual({
    status: 'queued',
    attempts: expect.any(Number),
    error: `simulated serialization failure for device ${failing.id}`,
  })
  expect(retrying.attempts).toBeLessThan(ATTEMPTS)

  // The other device is stored in both stores; the failing batch lands in the dead-letter set.
  await waitFor(async () => (await statusOf(healthyBatch)).status === 'stored', {
    timeoutMs: 15_000,
    what: 'the other device stored',
  })
  expect((await rowsOf(healthy.id)).length).toBe(100)
  const dead = await waitFor(() => deadLetterOf(failingBatch), {
    timeoutMs: 15_000,
    what: 'the failing job in the failed set',
  })
  expect(dead).toMatchObject({
    attemptsMade: ATTEMPTS,
    failedReason: `simulated serialization failure for device ${failing.id}`,
    deviceIds: [failing.id],
  })
  // The other device was sent while this one still had attempts left.
  expect(sentMeanwhileAt).toBeLessThan(dead.failedAt as number)
  expect(await pipeline.queueCounts()).toMatchObject({ 'store-postgres': { failed: 1 } })
  // The gateway queued it with the configured numbers and the catalog's policy.
  expect(await queuedOptionsOf(dead.jobId)).toMatchObject({
    attempts: ATTEMPTS,
    backoff: { type: 'exponential', delay: BACKOFF_MS, jitter: 0.5 },
  })

  // Three attempts, each after its backoff: BullMQ scheduled retry n at 400 × 2ⁿ⁻¹ ms, less up to
  // half (jitter), and started it no earlier.
  const events = await eventsOf(dead.jobId)
  const attempts = events.filter((e) => e.event === 'active')
  const retries = events.filter((e) => e.event === 'delayed')
  expect(attempts).toHaveLength(ATTEMPTS)
  expect(retries).toHaveLength(ATTEMPTS - 1)
  retries.forEach((retry, i) => {
    const longest = BACKOFF_MS * 2 ** i
    const due = Number(retry.delay)
    // Scheduled at the writer's clock, recorded at Redis's (the same machine, a moment later).
    expect(due - retry.at).toBeLessThanOrEqual(longest + 1)
    expect(due - retry.at).toBeGreaterThanOrEqual(longest / 2 - 100)
    expect(attempts[i + 1]?.at).toBeGreaterThanOrEqual(due - 1)
  })
  expect(events.filter((e) => e.event === 'retries-exhausted')).toMatchObject([
    { attemptsMade: String(ATTEMPTS) },
  ])

  const status = await statusOf(failingBatch)
  expect(status).toMatchObject({
    status: 'failed',
    stores: {
      postgres: {
        status: 'failed',
        attempts: ATTEMPTS,
        error: `simulated serialization failure for device ${failing.id}`,
      },
      influxdb: { status: 'stored' },
    },
  })
  expect(await rowsOf(failing.id)).toEqual([])
  expect((await influx.rowsOf(failing.id)).length).toBe(3)

  const listed = dlqReplay()
  expect(listed.status, listed.stderr).toBe(0)
  expect(listed.stdout).toContain(
    `store-postgres job ${dead.jobId}  batch ${failingBatch}  device ${failing.id}`,
  )
  expect(listed.stdout).toContain(`after ${ATTEMPTS} attempt(s): simulated serialization failure`)

  // The cause fixed, a replay stores the batch, once.
  await db.sql`DROP TRIGGER fail_transiently ON telemetry`
  const replayed = dlqReplay('--queue', 'store-postgres', '--all')
  expect(replayed.status, replayed.stderr).toBe(0)
  expect(replayed.stdout).toContain('1 job(s) replayed')
  await waitFor(async () => (await statusOf(failingBatch)).status === 'stored', {
    timeoutMs: 15_000,
    what: 'the replayed batch stored',
  })
  expect(await rowsOf(failing.id)).toEqual(
    pointsAt(failingTime, 3).map((p) => ({ t: p.timestamp, level: p.data.level })),
  )
  expect(await pipeline.queueCounts()).toMatchObject({ 'store-postgres': { failed: 0 } })
}, 120_000)

it("when a batch failing transiently shares its job with other devices' requests, the rest is stored at once and only its device batch is retried and dead-lettered", async () => {
  const { db, pipeline } = fixture
  const [failing, healthy] = [await pipeline.registerDevice(), await pipeline.registerDevice()]
  await failTransiently(failing.id)
  const failingTime = Date.UTC(2026, 10, 6)
  const [failingBatch, healthyBatch] = await Promise.all([
    pipeline.send(failing.apiKey, { points: pointsAt(failingTime, 3) }).then(batchIdOf),
    pipeline.send(healthy.apiKey, { points: pointsAt(Date.UTC(2026, 10, 7), 50) }).then(batchIdOf),
  ])
  expect(failingBatch).toBe(healthyBatch)

  // The healthy device's points are in PostgreSQL while the job still retries the failing ones.
  await waitFor(async () => (await rowsOf(healthy.id)).length === 50, {
    timeoutMs: 15_000,
    what: "the healthy device's points stored",
  })
  const dead = await waitFor(() => deadLetterOf(failingBatch), {
    timeoutMs: 15_000,
    what: 'the job in the failed set',
  })
  expect(dead).toMatchObject({
    attemptsMade: ATTEMPTS,
    deviceIds: [failing.id],
    points: 3,
    failedReason: `simulated serialization failure for device ${failing.id}`,
  })
  expect(await rowsOf(failing.id)).toEqual([])

  await db.sql`DROP TRIGGER fail_transiently ON telemetry`
  expect(dlqReplay('--queue', 'store-postgres', '--all').status).toBe(0)
  await waitFor(async () => (await statusOf(failingBatch)).status === 'stored', {
    timeoutMs: 15_000,
    what: 'the replayed batch stored',
  })
  expect((await rowsOf(failing.id)).length).toBe(3)
  expect((await rowsOf(healthy.id)).length).toBe(50)
}, 120_000)
