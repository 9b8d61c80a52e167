import { waitFor } from '@iotflow/testkit'
import { describe, expect, it } from 'vitest'
import { sendUntilRefused } from './support/backlog.js'
import { usePipelineFixture } from './support/fixture.js'
import { ADMIN_TOKEN } from './support/pipeline.js'

/** The gateway with a small bound and no writer: the backlog can only grow until they start. */
const LIMIT = 1000
const fixture = usePipelineFixture({ writers: false, env: { BACKLOG_MAX_POINTS: String(LIMIT) } })

// A day ago, to the second: every point sent stays in the past and within the accepted range.
const T0 = Math.floor(Date.now() / 1000) * 1000 - 86_400_000
const REFUSAL = {
  statusCode: 503,
  error: 'Service Unavailable',
  message: 'the queue backlog is over its limit; nothing was queued, retry later',
}

async function expectRefused(response: Response) {
  expect(response.status).toBe(503)
  expect(response.headers.get('retry-after')).toMatch(/^[1-3]$/)
  expect(await response.json()).toEqual(REFUSAL)
}

describe('backpressure: a bound on the points queued but not yet stored', () => {
  it('accepts until the bound, then answers 503 + Retry-After; once the writers drain it accepts again, and stores every acknowledged point', async () => {
    const { pipeline } = fixture
    const device = await pipeline.registerDevice()
    const { acknowledged, refusal } = await sendUntilRefused(pipeline, device.apiKey, T0)
    expect(acknowledged.length).toBeGreaterThanOrEqual(LIMIT) // never refused below the bound
    await expectRefused(refusal)

    // Each store queue counts every acknowledged point, and nothing of a refused request. Over the
    // limit the gateway is still ready: it answers, and only its ingest routes refuse.
    const ready = await fetch(`${pipeline.baseUrl}/health/ready`)
    expect(ready.status).toBe(200)
    expect(await ready.json()).toMatchObject({
      status: 'ready',
      backlog: {
        state: 'over-limit',
        limit: LIMIT,
        points: { 'store-postgres': acknowledged.length, 'store-influx': acknowledged.length },
      },
    })

    // Decided before the body is read (not JSON: no 400) and before the key is looked up (no 401).
    await expectRefused(await pipeline.send(device.apiKey, '{"points": [not json'))
    await expectRefused(await pipeline.send('iot_not-a-key', { data: { t: 1 } }))
    // Every route that queues telemetry: the predecessor alias, and the edge gateways' bulk route.
    await expectRefused(await pipeline.send(device.apiKey, { data: { t: 1 } }, '/api/v1/devices/telemetry'))
    const edge = await fetch(`${pipeline.baseUrl}/api/v1/gateways`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'site-1', device_ids: [device.id] }),
    })
    const { api_key: edgeKey } = (await edge.json()) as { api_key: string }
    await expectRefused(
      await pipeline.send(
        edgeKey,
        { points: [{ device_id: device.id, data: { t: 1 } }] },
        '/api/v1/telemetry/bulk',
      ),
    )
    // Many at once: every one refused, none queued.
    const many = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        pipeline.send(device.apiKey, { timestamp: T0 - i - 1, data: { t: i } }),
      ),
    )
    expect(many.map((r) => r.status)).toEqual(many.map(() => 503))
    // Other routes answer as usual.
    const status = await fetch(`${pipeline.baseUrl}/api/v1/devices/status`, {
      headers: { 'x-api-key': device.apiKey },
    })
    expect(status.status).toBe(200)

    const metrics = await (await fetch(`${pipeline.baseUrl}/metrics`)).text()
    expect(metrics).toMatch(/iotflow_points_refused_total\{transport="http",reason="backlog"\} \d+\n/)
    expect(metrics).not.toMatch(/reason="queue_unavailable"/)
    expect(metrics).toMatch(/iotflow_queue_backlog_limit_points 1000\n/)
    expect(metrics).toContain(
      `iotflow_queue_backlog_points{queue="store-influx",partition="0"} ${acknowledged.length}\n`,
    )

    // The writers start: the backlog drains and the gateway accepts again.
    const writers = {
      postgres: await pipeline.startPostgresWriter(),
      influx: await pipeline.startInfluxWriter(),
    }
    let next = T0 + 50_000_000 // after every point sent above
    await waitFor(
      async () => {
        const timestamp = next++
        const response = await pipeline.send(device.apiKey, { timestamp, data: { t: timestamp } })
        if (response.status !== 202) return false
        acknowledged.push(timestamp)
        return true
      },
      { timeoutMs: 20_000, what: 'the gateway to accept again' },
    )
    await pipeline.drained()

    // Every acknowledged point, once, in both stores; nothing refused was stored.
    const rows = await fixture.db.sql<{ time: Date }[]>`
      SELECT time FROM telemetry WHERE device_id = ${device.id} ORDER BY time`
    const sorted = [...acknowledged].sort((a, b) => a - b)
    expect(rows.map((r) => r.time.getTime())).toEqual(sorted)
    const influx = await fixture.influx.rowsOf(device.id)
    expect(influx.map((r) => r.time)).toEqual(sorted)

    // Each writer reports its own queue's depths and backlog, which the writers brought back to 0.
    const writerReadiness = (store: string) => ({
      queues: { [store]: { waiting: 0, active: 0, delayed: 0, failed: 0, prioritized: 0, paused: 0 } },
      backlog: { state: 'ok', limit: LIMIT, points: { [store]: 0 } },
      // The shared development Redis keeps nothing on disk (test/redis-durability.test.ts covers both kinds).
      redis_durability: expect.objectContaining({ appendonly: expect.any(String) }),
    })
    await waitFor(async () => (await writers.postgres.ready()).backlog?.points['store-postgres'] === 0, {
      what: 'the store-postgres backlog to be back to 0',
    })
    expect(await writers.postgres.ready()).toEqual({
      dependencies: { redis: { status: 'up' }, postgres: { status: 'up' } },
      ...writerReadiness('store-postgres'),
    })
    await waitFor(async () => (await writers.influx.ready()).backlog?.points['store-influx'] === 0, {
      what: 'the store-influx backlog to be back to 0',
    })
    expect(await writers.influx.ready()).toEqual({
      dependencies: { redis: { status: 'up' }, influxdb: { status: 'up' } },
      ...writerReadiness('store-influx'),
    })
  })
})
