import {
  createTestDatabase,
  createTestInfluxDatabase,
  startPrivatePrometheus,
  waitFor,
} from '@iotflow/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startWritersWithEndpoints } from './support/metrics-endpoints.js'
import { type Pipeline, startPipeline } from './support/pipeline.js'

let db: Awaited<ReturnType<typeof createTestDatabase>>
let influx: Awaited<ReturnType<typeof createTestInfluxDatabase>>
let pipeline: Pipeline
let endpoints: Awaited<ReturnType<typeof startWritersWithEndpoints>>
let prometheus: Awaited<ReturnType<typeof startPrivatePrometheus>>

beforeAll(async () => {
  db = await createTestDatabase()
  influx = await createTestInfluxDatabase()
  pipeline = await startPipeline({ databaseUrl: db.url, influx })
  endpoints = await startWritersWithEndpoints(pipeline)
  prometheus = await startPrivatePrometheus(endpoints.scrapeTargets())
})
afterAll(async () => {
  await prometheus?.dispose()
  await endpoints?.close()
  await pipeline?.close()
  await influx?.drop()
  await db?.drop()
})

describe('Prometheus scraping every app', () => {
  it('sees the gateway and both writers up, and the points they counted', async () => {
    await waitFor(
      async () => {
        const targets = await prometheus.targets()
        return targets.length === 3 && targets.every((t) => t.health === 'up')
      },
      { timeoutMs: 20_000, what: 'three targets up' },
    )
    const device = await pipeline.registerDevice()
    const points = Array.from({ length: 50 }, (_, i) => ({
      timestamp: Date.UTC(2026, 10, 27, 9, 0, i),
      data: { humidity: 40 + i },
    }))
    expect((await pipeline.send(device.apiKey, { points })).status).toBe(202)

    const [accepted, written] = await waitFor(
      async () => {
        const accepted = await prometheus.query(
          'sum by (job) (iotflow_points_accepted_total{transport="http"})',
        )
        const written = await prometheus.query('sum by (job, store) (iotflow_store_points_written_total)')
        return accepted[0]?.value === 50 && written.length === 2 && written.every((s) => s.value === 50)
          ? [accepted, written]
          : undefined
      },
      { timeoutMs: 20_000, what: 'the counted points in Prometheus' },
    )
    expect(accepted).toEqual([{ metric: { job: 'gateway' }, value: 50 }])
    expect(written.map((s) => s.metric).sort((a, b) => String(a.job).localeCompare(String(b.job)))).toEqual([
      { job: 'writer-influx', store: 'influxdb' },
      { job: 'writer-postgres', store: 'postgres' },
    ])
    const up = await prometheus.query('min by (job) (iotflow_dependency_up)')
    expect(up.map((s) => s.value)).toEqual([1, 1, 1])
  })
})
