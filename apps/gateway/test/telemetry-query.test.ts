import { type DeviceBatch, toColumns } from '@iotflow/contracts'
import { createTelemetryRepository } from '@iotflow/db'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { admin, build, registerDevice, type TestGateway } from './helper.js'

let gateway: TestGateway
let device: { id: number; key: string }
let other: { id: number; key: string }
const MIN = 60_000
// 250 points, one every 12 s (five a minute), ending a minute ago: fields `t` (number) every point, `mode` (string)
// on even points, `door` (boolean) only on the first ten.
const END = Math.floor((Date.now() - MIN) / MIN) * MIN
const START = END - 250 * 12_000
const times = Array.from({ length: 250 }, (_, i) => START + i * 12_000)

beforeAll(async () => {
  gateway = await build()
  const a = await registerDevice(gateway.app)
  const b = await registerDevice(gateway.app)
  device = { id: a.device.id, key: a.api_key }
  other = { id: b.device.id, key: b.api_key }
  const points = times.map((t, i) => ({
    t,
    data: { t: i, ...(i % 2 === 0 ? { mode: `m${i}` } : {}), ...(i < 10 ? { door: i % 3 === 0 } : {}) },
  }))
  const batch: DeviceBatch = { device_id: device.id, received_at: END, points }
  await createTelemetryRepository(gateway.db.sql).writeBatches([toColumns(batch)])
})
afterAll(async () => {
  await gateway?.close()
})

const get = (url: string, headers: Record<string, string>) => gateway.app.inject({ url, headers })
const own = () => ({ 'x-api-key': device.key })
const iso = (ms: number) => new Date(ms).toISOString()

describe('GET /api/v1/telemetry/{device_id}', () => {
  it('pages through a range newest first with a cursor, every point once', async () => {
    const seen: string[] = []
    let url = `/api/v1/telemetry/${device.id}?start=${iso(START)}&end=${iso(END)}&limit=100`
    for (let page = 0; page < 5; page++) {
      const body = (await get(url, own())).json()
      seen.push(...body.points.map((p: { timestamp: string }) => p.timestamp))
      if (!body.next_cursor) break
      url = `/api/v1/telemetry/${device.id}?start=${iso(START)}&end=${iso(END)}&limit=100&cursor=${body.next_cursor}`
    }
    expect(seen).toEqual([...times].reverse().map(iso))
  })

  it('returns only the chosen fields, and relative ranges work', async () => {
    const body = (await get(`/api/v1/telemetry/${device.id}?start=-1d&fields=door&limit=1000`, own())).json()
    expect(body.points).toHaveLength(10)
    expect(body.points.at(-1)).toEqual({ timestamp: iso(START), type: null, data: { door: true } })
    expect(body.next_cursor).toBeNull()
  })

  it('lets admin read any device, and refuses what it must', async () => {
    expect((await get(`/api/v1/telemetry/${device.id}?start=-1d&limit=1`, admin)).json().points).toHaveLength(
      1,
    )
    expect((await get(`/api/v1/telemetry/${device.id}`, {})).statusCode).toBe(401)
    expect((await get(`/api/v1/telemetry/${device.id}`, { 'x-api-key': other.key })).statusCode).toBe(403)
    expect((await get('/api/v1/telemetry/999999', admin)).statusCode).toBe(404)
    const badStart = await get(`/api/v1/telemetry/${device.id}?start=yesterday`, own())
    expect(badStart.statusCode).toBe(400)
    expect(badStart.json().errors).toEqual([{ path: 'querystring.start', message: expect.any(String) }])
    expect((await get(`/api/v1/telemetry/${device.id}?start=-1h&end=-2h`, own())).statusCode).toBe(400)
    expect((await get(`/api/v1/telemetry/${device.id}?cursor=%%%`, own())).statusCode).toBe(400)
    expect((await get(`/api/v1/telemetry/${device.id}?limit=0`, own())).statusCode).toBe(400)
  })
})

describe('GET /api/v1/telemetry/{device_id}/latest', () => {
  it('gives the newest value of every field, even one that stopped reporting', async () => {
    const body = (await get(`/api/v1/telemetry/${device.id}/latest`, own())).json()
    expect(body).toEqual({
      device_id: device.id,
      fields: {
        t: { value: 249, timestamp: iso(times[249] as number) },
        mode: { value: 'm248', timestamp: iso(times[248] as number) },
        door: { value: true, timestamp: iso(times[9] as number) },
      },
    })
    expect((await get(`/api/v1/telemetry/${device.id}/latest`, { 'x-api-key': other.key })).statusCode).toBe(
      403,
    )
    expect((await get(`/api/v1/telemetry/${other.id}/latest`, admin)).json().fields).toEqual({})
  })
})

describe('GET /api/v1/telemetry/{device_id}/aggregated', () => {
  const aggregated = (query: string) =>
    get(`/api/v1/telemetry/${device.id}/aggregated?start=${iso(START)}&end=${iso(END)}&${query}`, own())

  it('aggregates a field over windows with each function', async () => {
    // START is on a minute, so the first window holds points 0..4 (t = 0..4).
    const expectations: [string, unknown][] = [
      ['mean', 2],
      ['min', 0],
      ['max', 4],
      ['sum', 10],
      ['count', 5],
      ['first', 0],
      ['last', 4],
    ]
    expect(START % MIN).toBe(0)
    for (const [aggregation, value] of expectations) {
      const body = (await aggregated(`field=t&aggregation=${aggregation}&window=1m`)).json()
      expect(body.buckets[0], aggregation).toEqual({ timestamp: iso(START), value })
      expect(body.buckets).toHaveLength(50)
    }
  })

  it('counts and picks non-numeric fields, and ignores them in numeric aggregations', async () => {
    const count = (await aggregated('field=mode&aggregation=count&window=1h')).json()
    expect(count.buckets.reduce((n: number, b: { value: number }) => n + b.value, 0)).toBe(125)
    // The ten door points may straddle midnight UTC, so the day windows they fall in are worked out, not assumed.
    const lastDoorPerDay = new Map<number, boolean>()
    for (let i = 0; i < 10; i++)
      lastDoorPerDay.set(Math.floor((times[i] as number) / 86_400_000), i % 3 === 0)
    const last = (await aggregated('field=door&aggregation=last&window=1d')).json()
    expect(last.buckets.map((b: { value: unknown }) => b.value)).toEqual([...lastDoorPerDay.values()])
    const mean = (await aggregated('field=mode&aggregation=mean&window=1h')).json()
    expect(mean.buckets.every((b: { value: unknown }) => b.value === null)).toBe(true)
  })

  it('refuses bad windows, too many windows and unknown aggregations', async () => {
    for (const window of ['0s', '2d', '1y', 'abc', '500ms']) {
      const response = await aggregated(`field=t&window=${window}`)
      expect(response.statusCode, window).toBe(400)
    }
    const tooMany = await get(`/api/v1/telemetry/${device.id}/aggregated?field=t&window=1s&start=-30d`, own())
    expect(tooMany.statusCode).toBe(400)
    expect(tooMany.json().errors[0].path).toBe('querystring.window')
    expect((await aggregated('field=t&aggregation=median')).statusCode).toBe(400)
    expect((await aggregated('aggregation=mean')).statusCode).toBe(400)
  })
})
