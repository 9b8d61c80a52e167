import { createTestDatabase, createTestInfluxDatabase, startPrivateInfluxd, waitFor } from '@iotflow/testkit'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type Pipeline, startPipeline } from './support/pipeline.js'

let db: Awaited<ReturnType<typeof createTestDatabase>>
let influxd: Awaited<ReturnType<typeof startPrivateInfluxd>>
let influx: Awaited<ReturnType<typeof createTestInfluxDatabase>>
let pipeline: Pipeline

beforeAll(async () => {
  db = await createTestDatabase()
  // InfluxDB enforces retention on its own schedule; here every second instead of every 30 minutes.
  influxd = await startPrivateInfluxd({ INFLUXDB_RETENTION_CHECK_INTERVAL: '1s' })
  influx = await createTestInfluxDatabase(influxd.url)
  pipeline = await startPipeline({ databaseUrl: db.url, influx })
})
afterAll(async () => {
  await pipeline?.close()
  await influxd?.dispose()
  await db?.drop()
})

const DAY = 86_400_000

it('drops points older than the retention period from both stores, and keeps newer ones', async () => {
  // Stored while nothing expires: points 10 days, 9 days and 30 minutes old.
  const device = await pipeline.registerDevice()
  const now = Date.now()
  const old = [now - 10 * DAY, now - 9 * DAY]
  const recent = now - 30 * 60_000
  const points = [...old, recent].map((timestamp, i) => ({ timestamp, data: { v: i } }))
  expect((await pipeline.send(device.apiKey, { points })).status).toBe(202)
  const writers = [await pipeline.startPostgresWriter(), await pipeline.startInfluxWriter()]
  await pipeline.drained()
  expect((await influx.rowsOf(device.id)).length).toBe(3)
  await Promise.all(writers.map((w) => w.close()))

  // Writers with a two-day retention: their retention jobs run at start.
  const postgres = await pipeline.startPostgresWriter({ RETENTION_DAYS: '2' })
  await pipeline.startInfluxWriter({ RETENTION_DAYS: '2' })
  await postgres.retention?.runNow()

  const pg = await db.sql<{ t: number }[]>`
    SELECT (extract(epoch FROM time) * 1000)::float8 AS t FROM telemetry WHERE device_id = ${device.id}`
  expect(pg.map((r) => r.t)).toEqual([recent])
  const latest = await db.sql`SELECT field FROM telemetry_latest WHERE device_id = ${device.id}`
  expect(latest.length).toBe(1) // `v` was last written 30 minutes ago: kept

  const remaining = await waitFor(
    async () => {
      const rows = await influx.rowsOf(device.id)
      return rows.length === 1 && rows
    },
    { timeoutMs: 20_000, what: 'InfluxDB to expire the old shard' },
  )
  expect(remaining.map((r) => r.time)).toEqual([recent])
})
