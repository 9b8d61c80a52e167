import { lintExposition, ScrapedMetrics, waitFor } from '@iotflow/testkit'
import { describe, expect, it } from 'vitest'
import { usePipelineFixture } from './support/fixture.js'
import { startWritersWithEndpoints } from './support/metrics-endpoints.js'

const fixture = usePipelineFixture({ writers: false })

/** Prometheus' own parser accepts it; its only lint findings are prom-client's stock gauges named `_total`. */
async function expectValidExposition(text: string) {
  const lint = await lintExposition(text)
  expect(lint.exitCode === 0 || lint.exitCode === 3, lint.problems.join('\n')).toBe(true)
  expect(lint.problems.filter((p) => !/^nodejs_active_\w+_total non-counter/.test(p))).toEqual([])
}

const REQUESTS = 20
const POINTS_PER_REQUEST = 100
const BASE_MS = Date.UTC(2026, 10, 27, 8, 0, 0)

describe('/metrics of the gateway and both writers, under load', () => {
  it('exposes every operator series, each moving as points flow', async () => {
    const device = await fixture.pipeline.registerDevice()
    const batch = (request: number) => ({
      points: Array.from({ length: POINTS_PER_REQUEST }, (_, i) => ({
        timestamp: BASE_MS + request * POINTS_PER_REQUEST + i,
        data: { temperature: 20 + i / 10 },
      })),
    })
    const gatewayMetrics = () => ScrapedMetrics.from(`${fixture.pipeline.baseUrl}/metrics`)
    const gatewayBefore = await gatewayMetrics()

    // Writers held back: the load waits in the queues, and the depth gauges show it.
    for (let request = 0; request < REQUESTS; request++) {
      expect((await fixture.pipeline.send(device.apiKey, batch(request))).status).toBe(202)
    }
    expect((await fixture.pipeline.send(device.apiKey, { points: [{ data: {} }] })).status).toBe(400)
    const queued = await gatewayMetrics()
    for (const queue of ['store-postgres', 'store-influx']) {
      expect(queued.value('iotflow_queue_jobs', { queue, state: 'waiting' })).toBe(REQUESTS)
    }
    const accepted = (m: ScrapedMetrics) => m.value('iotflow_points_accepted_total', { transport: 'http' })
    expect(accepted(queued) - accepted(gatewayBefore)).toBe(REQUESTS * POINTS_PER_REQUEST)
    expect(queued.value('iotflow_points_refused_total', { transport: 'http', reason: 'invalid' })).toBe(1)

    const endpoints = await startWritersWithEndpoints(fixture.pipeline)
    try {
      await waitFor(
        async () => {
          const [pg, ifx] = await Promise.all([
            fixture.db.sql`SELECT count(*)::int AS n FROM telemetry WHERE device_id = ${device.id}`,
            fixture.influx.rowsOf(device.id),
          ])
          return pg[0]?.n === REQUESTS * POINTS_PER_REQUEST && ifx.length === REQUESTS * POINTS_PER_REQUEST
        },
        { timeoutMs: 20_000, what: 'every point in both stores' },
      )
      const drained = await waitFor(
        async () => {
          const m = await gatewayMetrics()
          const left = ['store-postgres', 'store-influx'].map(
            (queue) =>
              m.value('iotflow_queue_jobs', { queue, state: 'waiting' }) +
              m.value('iotflow_queue_jobs', { queue, state: 'active' }),
          )
          return left.every((n) => n === 0) && m
        },
        { what: 'empty store queues' },
      )
      await expectValidExposition(drained.text)
      expect(drained.value('iotflow_dependency_up', { dependency: 'redis' })).toBe(1)
      expect(drained.value('iotflow_dependency_up', { dependency: 'postgres' })).toBe(1)
      expect(
        drained.value('iotflow_http_request_duration_seconds_count', {
          route: '/api/v1/telemetry',
          status_code: '202',
        }),
      ).toBe(REQUESTS)

      for (const [store, url, dependency] of [
        ['postgres', endpoints.urls.postgres, 'postgres'],
        ['influxdb', endpoints.urls.influx, 'influxdb'],
      ] as const) {
        const writer = await ScrapedMetrics.from(`${url}/metrics`)
        expect(writer.value('iotflow_store_points_written_total', { store })).toBe(
          REQUESTS * POINTS_PER_REQUEST,
        )
        const batches = writer.value('iotflow_store_batch_points_count', { store })
        expect(batches).toBeGreaterThan(0)
        expect(batches).toBeLessThanOrEqual(REQUESTS)
        expect(writer.value('iotflow_store_write_duration_seconds_count', { store, outcome: 'ok' })).toBe(
          batches,
        )
        // One latency observation per acknowledged request, each once its batch committed.
        expect(writer.value('iotflow_end_to_end_latency_seconds_count', { store })).toBe(REQUESTS)
        expect(writer.value('iotflow_end_to_end_latency_seconds_sum', { store })).toBeGreaterThan(0)
        expect(writer.value('iotflow_end_to_end_latency_seconds_bucket', { store, le: '+Inf' })).toBe(
          REQUESTS,
        )
        await expectValidExposition(writer.text)
        expect(writer.value('iotflow_dependency_up', { dependency })).toBe(1)
        expect(writer.value('iotflow_dependency_up', { dependency: 'redis' })).toBe(1)
        expect(writer.value('process_resident_memory_bytes')).toBeGreaterThan(0)
        expect(writer.has('nodejs_eventloop_lag_seconds')).toBe(true)
        expect(writer.has('nodejs_heap_size_used_bytes')).toBe(true)
      }
    } finally {
      await endpoints.close()
    }
  })
})
