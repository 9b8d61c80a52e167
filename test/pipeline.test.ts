import { waitFor } from '@iotflow/testkit'
import { describe, expect, it } from 'vitest'
import { usePipelineFixture } from './support/fixture.js'

const fixture = usePipelineFixture()

const pgRows = (deviceId: number) =>
  fixture.db.sql<{ t: number; type: string | null; data: Record<string, unknown> }[]>`
    SELECT (extract(epoch FROM time) * 1000)::float8 AS t, type, data
    FROM telemetry WHERE device_id = ${deviceId} ORDER BY time`

/** Waits until both stores hold `count` points of the device; returns both, oldest first. */
async function storedInBoth(deviceId: number, count: number) {
  return waitFor(
    async () => {
      const [pg, ifx] = await Promise.all([pgRows(deviceId), fixture.influx.rowsOf(deviceId)])
      return pg.length === count && ifx.length === count && { pg, ifx }
    },
    { timeoutMs: 15_000, what: `${count} points of device ${deviceId} in both stores` },
  )
}

const BASE_MS = Date.UTC(2026, 10, 27, 12, 0, 0)

describe('the durable dual-write pipeline', () => {
  it('stores one point, a batch of 1,000 and a bare array in both stores with the same values', async () => {
    const device = await fixture.pipeline.registerDevice()
    const single = {
      timestamp: new Date(BASE_MS).toISOString(),
      data: { temperature: 21.5, ok: true, mode: 'eco' },
    }
    const batch = {
      points: Array.from({ length: 1000 }, (_, i) => ({
        timestamp: BASE_MS + 1000 + i, // epoch milliseconds
        data: { temperature: 20 + i / 100, seq: i },
      })),
    }
    const bare = [
      { timestamp: BASE_MS / 1000 + 5000, data: { temperature: 19 } }, // epoch seconds
      { timestamp: BASE_MS / 1000 + 5001, data: { temperature: 18.25 }, type: 'sensors' },
    ]

    for (const body of [single, batch, bare]) {
      const response = await fixture.pipeline.send(device.apiKey, body)
      expect(response.status).toBe(202)
      const answer = (await response.json()) as { batch_id: string; accepted: number }
      expect(answer.batch_id).toMatch(/^[0-9a-f-]{36}$/)
    }

    const { pg, ifx } = await storedInBoth(device.id, 1003)
    expect(pg[0]).toEqual({ t: BASE_MS, type: null, data: single.data })
    expect(ifx[0]).toMatchObject({
      time: BASE_MS,
      temperature: 21.5,
      ok: true,
      mode: 'eco',
      device_id: String(device.id),
    })
    expect(pg[1000]).toEqual({ t: BASE_MS + 1999, type: null, data: batch.points[999]?.data })
    expect(pg[1002]).toEqual({ t: BASE_MS + 5_001_000, type: 'sensors', data: { temperature: 18.25 } })
    expect(ifx[1002]).toMatchObject({ time: BASE_MS + 5_001_000, temperature: 18.25 })
    expect(ifx[1002]?.type).toBeUndefined()
    // Same timestamps and values, point by point.
    for (let i = 0; i < pg.length; i++) {
      const p = pg[i] as { t: number; data: Record<string, unknown> }
      const f = ifx[i] as Record<string, unknown>
      expect(f.time).toBe(p.t)
      for (const [field, value] of Object.entries(p.data)) expect(f[field]).toEqual(value)
    }
  })

  it('stores humidity 50 then 50.0 as one float field, with no write error', async () => {
    const device = await fixture.pipeline.registerDevice()
    expect(
      (await fixture.pipeline.send(device.apiKey, { timestamp: BASE_MS, data: { humidity: 50 } })).status,
    ).toBe(202)
    // Sent as raw text so that "50.0" really is on the wire.
    const asFloat = `{"timestamp": ${BASE_MS + 1}, "data": {"humidity": 50.0}}`
    expect((await fixture.pipeline.send(device.apiKey, asFloat)).status).toBe(202)

    const { ifx } = await storedInBoth(device.id, 2)
    expect(ifx.map((row) => row.humidity)).toEqual([50, 50])
    expect((await fixture.influx.fieldTypes()).humidity).toBe('float')
    const counts = await fixture.pipeline.queueCounts()
    expect(counts['store-influx']?.failed).toBe(0)
    expect(counts['store-postgres']?.failed).toBe(0)
  })

  it('stores a batch sent twice once in each store', async () => {
    const device = await fixture.pipeline.registerDevice()
    const batch = {
      points: Array.from({ length: 50 }, (_, i) => ({ timestamp: BASE_MS + i, data: { v: i } })),
    }
    expect((await fixture.pipeline.send(device.apiKey, batch)).status).toBe(202)
    expect((await fixture.pipeline.send(device.apiKey, batch)).status).toBe(202)

    // Both batches are fully written once the queues are empty of them.
    await fixture.pipeline.drained()
    const { pg, ifx } = await storedInBoth(device.id, 50)
    expect(pg.map((r) => r.data.v)).toEqual(ifx.map((r) => r.v))
    const [total] = await fixture.db.sql<
      { n: number }[]
    >`SELECT count(*)::int AS n FROM telemetry WHERE device_id = ${device.id}`
    expect(total?.n).toBe(50)
  })
})

describe('refusals', () => {
  const point = { data: { temperature: 1 } }

  it('answers 401 for a wrong key and for no key, and queues nothing', async () => {
    const before = await fixture.pipeline.queueCounts()
    const wrong = await fixture.pipeline.send('iot_not-a-real-key', point)
    expect(wrong.status).toBe(401)
    expect(await wrong.json()).toMatchObject({ statusCode: 401, message: 'unknown API key' })
    const none = await fixture.pipeline.send(undefined, point)
    expect(none.status).toBe(401)
    expect(await none.json()).toMatchObject({
      statusCode: 401,
      message: expect.stringContaining('X-API-Key'),
    })
    expect(await fixture.pipeline.queueCounts()).toEqual(before)
  })

  it('answers 400 with what is wrong and where for a malformed body, and queues nothing', async () => {
    const device = await fixture.pipeline.registerDevice()
    const before = await fixture.pipeline.queueCounts()

    const truncated = await fixture.pipeline.send(device.apiKey, '{"data": {"temperature": 1')
    expect(truncated.status).toBe(400)
    expect(((await truncated.json()) as { message: string }).message).toMatch(/JSON/)

    const invalid = await fixture.pipeline.send(device.apiKey, {
      points: [{ data: { ok: 1 } }, { data: { bad: null } }, { timestamp: 'yesterday', data: { x: 1 } }, {}],
    })
    expect(invalid.status).toBe(400)
    const answer = (await invalid.json()) as { errors: { path: string; message: string }[] }
    expect(answer.errors.map((e) => e.path)).toEqual([
      'points[1].data.bad',
      'points[2].timestamp',
      'points[3].data',
    ])

    expect(await fixture.pipeline.queueCounts()).toEqual(before)
    const [stored] = await fixture.db.sql<
      { n: number }[]
    >`SELECT count(*)::int AS n FROM telemetry WHERE device_id = ${device.id}`
    expect(stored?.n).toBe(0)
  })

  it('answers 401 to device registration without the admin token', async () => {
    const response = await fetch(`${fixture.pipeline.baseUrl}/api/v1/devices`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer wrong-token-wrong-token' },
      body: JSON.stringify({ name: 'intruder' }),
    })
    expect(response.status).toBe(401)
  })
})
