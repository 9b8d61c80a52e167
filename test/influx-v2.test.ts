import { createTestDatabase, startPrivateVictoriaMetrics, waitFor } from '@iotflow/testkit'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type Pipeline, startPipeline } from './support/pipeline.js'

// The v2 write path (InfluxDB 2.x, as in docker-compose.yml), against VictoriaMetrics, which
// speaks InfluxDB's /api/v2/write.
let db: Awaited<ReturnType<typeof createTestDatabase>>
let vm: Awaited<ReturnType<typeof startPrivateVictoriaMetrics>>
let pipeline: Pipeline

beforeAll(async () => {
  db = await createTestDatabase()
  vm = await startPrivateVictoriaMetrics()
  pipeline = await startPipeline({
    databaseUrl: db.url,
    influx: { api: 'v2', url: vm.url, token: 'test-token', org: 'iotflow', bucket: 'telemetry' },
  })
  await pipeline.startInfluxWriter()
})

afterAll(async () => {
  await pipeline?.close()
  await vm?.dispose()
  await db?.drop()
})

it('writes through the InfluxDB v2 API with ms timestamps, tags and float fields', async () => {
  const device = await pipeline.registerDevice()
  const base = Date.UTC(2026, 10, 27, 8)
  const points = [
    { timestamp: base, data: { humidity: 50, pressure: 1013.25 } },
    { timestamp: base + 1, data: { humidity: 50.5 }, type: 'sensors' },
  ]
  expect((await pipeline.send(device.apiKey, { points })).status).toBe(202)

  const series = await waitFor(
    async () => {
      const found = await vm.exportSeries(`{device_id="${device.id}"}`)
      const total = found.reduce((n, s) => n + s.values.length, 0)
      return total === 3 && found
    },
    { timeoutMs: 15_000, what: 'both points in VictoriaMetrics' },
  )
  // A point's type is not a tag: one series per field of the device, whatever the points' types.
  const byName = (name: string) => series.find((s) => s.metric.__name__ === name)
  expect(byName('telemetry_humidity')).toMatchObject({
    metric: { device_id: String(device.id), device_type: 'sensor' },
    values: [50, 50.5],
    timestamps: [base, base + 1],
  })
  expect(byName('telemetry_humidity')?.metric.type).toBeUndefined()
  expect(byName('telemetry_pressure')).toMatchObject({ values: [1013.25], timestamps: [base] })
})
