import { waitFor } from '@iotflow/testkit'
import { describe, expect, it } from 'vitest'
import { usePipelineFixture } from './support/fixture.js'
import { ADMIN_TOKEN } from './support/pipeline.js'

const fixture = usePipelineFixture()
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` }

// biome-ignore lint/suspicious/noExplicitAny: answers are checked by the assertions that read them
type Answer = { status: number; body: Record<string, any> }

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = admin,
): Promise<Answer> {
  const response = await fetch(`${fixture.pipeline.baseUrl}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  return { status: response.status, body: (await response.json()) as Answer['body'] }
}

describe('edge gateways', () => {
  it('sends one batch for many devices, stored per device in both stores', async () => {
    const [a, b, outsider] = await Promise.all([
      fixture.pipeline.registerDevice(),
      fixture.pipeline.registerDevice(),
      fixture.pipeline.registerDevice(),
    ])
    const created = await call('POST', '/api/v1/gateways', { name: 'site-7', device_ids: [a.id, b.id] })
    expect(created.status).toBe(201)
    expect(created.body.gateway).toMatchObject({
      name: 'site-7',
      status: 'active',
      device_ids: [a.id, b.id].sort((x, y) => x - y),
    })
    const key = { 'x-api-key': created.body.api_key as string }
    expect(created.body.api_key).toMatch(/^iotgw_/)

    const t = Date.UTC(2026, 10, 27, 10)
    const points = [
      { device_id: a.id, timestamp: t, data: { temp: 20 } },
      { device_id: b.id, timestamp: t, data: { temp: 21 } },
      { device_id: a.id, timestamp: t + 1, data: { temp: 22 } },
    ]
    const sent = await call('POST', '/api/v1/telemetry/bulk', { points }, key)
    expect(sent.status).toBe(202)
    expect(sent.body).toMatchObject({
      accepted: 3,
      batches: [
        { device_id: a.id, accepted: 2, batch_id: expect.any(String) },
        { device_id: b.id, accepted: 1, batch_id: expect.any(String) },
      ],
    })
    await fixture.pipeline.drained()
    const pg = await fixture.db.sql<{ device_id: number; temp: number }[]>`
      SELECT device_id, (data->>'temp')::float8 AS temp FROM telemetry WHERE device_id IN (${a.id}, ${b.id}) ORDER BY time, temp`
    expect(pg).toEqual([
      { device_id: a.id, temp: 20 },
      { device_id: b.id, temp: 21 },
      { device_id: a.id, temp: 22 },
    ])
    await waitFor(
      async () =>
        (await fixture.influx.rowsOf(a.id)).length === 2 && (await fixture.influx.rowsOf(b.id)).length === 1,
      {
        what: 'both devices in InfluxDB',
      },
    )

    // A point for a device it may not speak for refuses the whole request: nothing queued.
    const before = await fixture.pipeline.queueCounts()
    const refused = await call(
      'POST',
      '/api/v1/telemetry/bulk',
      [
        { device_id: a.id, data: { temp: 1 } },
        { device_id: outsider.id, data: { temp: 2 } },
      ],
      key,
    )
    expect(refused.status).toBe(403)
    expect(refused.body.errors).toEqual([
      { path: '[1].device_id', message: `this gateway may not send for device ${outsider.id}` },
    ])
    const invalid = await call(
      'POST',
      '/api/v1/telemetry/bulk',
      { points: [{ data: { temp: 1 } }, { device_id: a.id, data: {} }] },
      key,
    )
    expect(invalid.status).toBe(400)
    expect(invalid.body.errors.map((e: { path: string }) => e.path)).toEqual([
      'points[0].device_id',
      'points[1].data',
    ])
    expect(await fixture.pipeline.queueCounts()).toEqual(before)

    // A device key is not a gateway key; a deactivated gateway's key stops at once.
    expect((await call('POST', '/api/v1/telemetry/bulk', { points }, { 'x-api-key': a.apiKey })).status).toBe(
      401,
    )
    const id = created.body.gateway.id as number
    expect(
      (await call('PATCH', `/api/v1/gateways/${id}`, { device_ids: [a.id, b.id, outsider.id] })).body.gateway
        .device_ids,
    ).toHaveLength(3)
    expect((await call('DELETE', `/api/v1/gateways/${id}`)).body.gateway.status).toBe('inactive')
    expect((await call('POST', '/api/v1/telemetry/bulk', { points }, key)).status).toBe(401)
  })

  it('refuses unknown devices, duplicate names and callers without the admin token', async () => {
    expect((await call('POST', '/api/v1/gateways', { name: 'ghost', device_ids: [999999] })).status).toBe(400)
    expect((await call('POST', '/api/v1/gateways', { name: 'dup', device_ids: [] })).status).toBe(201)
    expect((await call('POST', '/api/v1/gateways', { name: 'dup', device_ids: [] })).status).toBe(409)
    expect((await call('POST', '/api/v1/gateways', { name: 'x', device_ids: [] }, {})).status).toBe(401)
    expect((await call('GET', '/api/v1/gateways/999999')).status).toBe(404)
  })
})
