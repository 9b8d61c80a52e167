import { loadMqttBridgeConfig } from '@iotflow/config'
import { createQueueDepths, type QueueDepths, queueLayout } from '@iotflow/queue'
import { createTestDatabase, serviceUrls, type TestDatabase, waitFor } from '@iotflow/testkit'
import { useTestRedis } from '@iotflow/testkit/use-test-redis'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { assembleIngest, type IngestAssembly } from './ingest-assembly.js'

/** The ingest path as the gateway and the bridge assemble it, on the real Redis and PostgreSQL. */
const redis = useTestRedis('ingest')
let db: TestDatabase
let ingest: IngestAssembly
let depths: QueueDepths

beforeAll(async () => {
  db = await createTestDatabase()
  const config = loadMqttBridgeConfig({
    REDIS_URL: serviceUrls.redis,
    DATABASE_URL: db.url,
    QUEUE_PREFIX: redis.prefix,
  })
  ingest = await assembleIngest({
    config,
    sql: db.sql,
    redis: redis.redis(),
    groupCommit: { maxPoints: 1000, lingerMs: 2, maxInFlight: 2 },
    logger: { warn() {} },
  })
  depths = createQueueDepths(redis.redis(), queueLayout(redis.prefix))
})

afterAll(async () => {
  await ingest?.close()
  await depths?.close()
  await db?.drop()
})

const T0 = Date.UTC(2026, 5, 1, 12)
const device = (id: number) => ({ id, device_type: 'sensor' })
const waitingJobs = async () =>
  Object.fromEntries(Object.entries(await depths.read()).map(([queue, counts]) => [queue, counts.waiting]))
const backlogPoints = async () => (await ingest.backlog.readNow()).points

describe('the ingest path', () => {
  it('queues a valid body for both stores and answers 202 once Redis holds it', async () => {
    const outcome = await ingest.ingestService.ingest(device(1), {
      points: [
        { timestamp: T0, data: { temperature: 21.5 } },
        { timestamp: T0 + 1000, data: { temperature: 21.7 } },
      ],
    })
    expect(outcome).toEqual({ status: 202, batchId: expect.any(String), accepted: 2 })
    expect(await waitingJobs()).toEqual({ 'store-postgres': 1, 'store-influx': 1 })
    expect(await backlogPoints()).toEqual({ 'store-postgres': 2, 'store-influx': 2 })
  })

  it('refuses an invalid body with 400 naming each bad point, and queues nothing of it', async () => {
    const before = await backlogPoints()
    const outcome = await ingest.ingestService.ingest(device(1), {
      points: [
        { timestamp: T0, data: { temperature: 21.5 } },
        { timestamp: 'yesterday', data: { temperature: 21.6 } },
        { timestamp: T0 + 2000, data: {} },
      ],
    })
    expect(outcome).toMatchObject({ status: 400 })
    const paths = outcome.status === 400 ? outcome.errors.map((e) => e.path) : []
    expect(paths).toEqual([expect.stringMatching(/^points\[1\]/), expect.stringMatching(/^points\[2\]/)])
    expect(await backlogPoints()).toEqual(before)
  })

  it('refuses a field sent with another type than it was first stored with (400), registry in PostgreSQL', async () => {
    const first = await ingest.ingestService.ingest(device(2), { timestamp: T0, data: { mode: 'eco' } })
    expect(first.status).toBe(202)
    const before = await backlogPoints()
    const changed = await ingest.ingestService.ingest(device(3), { timestamp: T0, data: { mode: 3 } })
    expect(changed).toMatchObject({ status: 400, errors: [{ path: 'data.mode' }] })
    const [registered] = await db.sql<{ type: string }[]>`SELECT type FROM field_types WHERE name = 'mode'`
    expect(registered?.type).toBe('string')
    expect(await backlogPoints()).toEqual(before)
  })

  it('refuses a device over its own rate limit with 429, and queues nothing of that batch', async () => {
    const limited = { ...device(4), rate_limit: { points_per_second: 0.001, burst_points: 3 } }
    const body = (t: number) => ({
      points: [0, 1].map((i) => ({ timestamp: t + i, data: { level: i } })),
    })
    expect((await ingest.ingestService.ingest(limited, body(T0))).status).toBe(202)
    const before = await backlogPoints()
    const refused = await ingest.ingestService.ingest(limited, body(T0 + 10))
    expect(refused).toMatchObject({ status: 429, retryAfterSeconds: expect.any(Number) })
    expect(await backlogPoints()).toEqual(before)
  })

  it('admits a device far from its limit without a call of its own: its tokens are taken in a MULTI, small batches together', async () => {
    const sender = { ...device(5), rate_limit: { points_per_second: 0.001, burst_points: 1000 } }
    const body = (t: number) => ({ points: [0, 1].map((i) => ({ timestamp: t + i, data: { level: i } })) })
    // Unknown here: decided in Redis, whose answer (the level) this instance keeps.
    expect((await ingest.ingestService.ingest(sender, body(T0 + 100))).status).toBe(202)
    const sent = vi.spyOn(redis.redis(), 'sendCommand')
    try {
      for (let i = 1; i <= 10; i++)
        expect((await ingest.ingestService.ingest(sender, body(T0 + 100 + 10 * i))).status).toBe(202)
      const takes = sent.mock.calls
        .map(([command]) => command as unknown as { inTransaction: boolean; args: unknown[] })
        .filter((command) => command.args.some((arg) => String(arg).includes(':bucket:device:5')))
      // No exact check (its argument: a take count, then rate, burst, cost and reserve). A call of
      // its own taking owed points (rate, burst, cost) comes only if 250 ms passed between batches.
      const asked = takes.filter(
        (command) => !command.inTransaction && JSON.parse(String(command.args.at(-1))).length === 5,
      )
      expect(asked).toEqual([])
      // 2 points a batch are owed until they reach 1 % of the burst (10): every fifth batch's MULTI
      // takes its own points and the four batches' before (owed-points.ts).
      const inMulti = takes.filter((command) => command.inTransaction).length
      expect(inMulti).toBeGreaterThanOrEqual(1)
      expect(inMulti).toBeLessThan(10)
    } finally {
      sent.mockRestore()
    }
    // Every point is taken, the last owed ones within OWED_MAX_MS at the latest.
    const tokens = async () =>
      Number((await redis.redis().get(`{${redis.prefix}}:bucket:device:5`))?.split(' ')[0])
    await waitFor(async () => Math.abs((await tokens()) - (1000 - 22)) < 0.5, { what: 'every point taken' })
  })
})
