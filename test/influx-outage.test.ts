import { createTestDatabase, createTestInfluxDatabase, startPrivateInfluxd, waitFor } from '@iotflow/testkit'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type Pipeline, startPipeline } from './support/pipeline.js'

let db: Awaited<ReturnType<typeof createTestDatabase>>
let influxd: Awaited<ReturnType<typeof startPrivateInfluxd>>
let influx: Awaited<ReturnType<typeof createTestInfluxDatabase>>
let pipeline: Pipeline

beforeAll(async () => {
  db = await createTestDatabase()
  influxd = await startPrivateInfluxd()
  influx = await createTestInfluxDatabase(influxd.url)
  pipeline = await startPipeline({ databaseUrl: db.url, influx })
  await pipeline.startPostgresWriter()
  await pipeline.startInfluxWriter()
})

afterAll(async () => {
  await pipeline?.close()
  await influxd?.dispose()
  await db?.drop()
})

it('keeps Postgres current while InfluxDB is down, and catches InfluxDB up when it returns', async () => {
  const device = await pipeline.registerDevice()
  await influxd.stop()

  const base = Date.UTC(2026, 10, 27)
  const batch = {
    points: Array.from({ length: 200 }, (_, i) => ({ timestamp: base + i, data: { level: i } })),
  }
  const response = await pipeline.send(device.apiKey, batch)
  expect(response.status).toBe(202)

  await waitFor(
    async () => {
      const [row] = await db.sql<
        { n: number }[]
      >`SELECT count(*)::int AS n FROM telemetry WHERE device_id = ${device.id}`
      return row?.n === 200
    },
    { timeoutMs: 10_000, what: 'the batch in Postgres while InfluxDB is down' },
  )
  // The InfluxDB job is waiting for the store, not burning its attempts.
  await new Promise((resolve) => setTimeout(resolve, 2_000))
  const during = (await pipeline.queueCounts())['store-influx']
  expect(during?.failed).toBe(0)
  expect((during?.waiting ?? 0) + (during?.active ?? 0) + (during?.delayed ?? 0)).toBe(1)

  await influxd.start()
  const rows = await waitFor(
    async () => {
      const stored = await influx.rowsOf(device.id)
      return stored.length === 200 && stored
    },
    { timeoutMs: 40_000, intervalMs: 250, what: 'the batch in InfluxDB after it returned' },
  )
  expect(rows.map((r) => r.level)).toEqual(batch.points.map((p) => p.data.level))
  const after = (await pipeline.queueCounts())['store-influx']
  expect(after?.failed).toBe(0)
}, 90_000)
