import { request } from 'node:http'
import { waitFor } from '@iotflow/testkit'
import { beforeAll, describe, expect, it } from 'vitest'
import { usePipelineFixture } from './support/fixture.js'
import { bodyBytes, type HostileCase as Case, refused, seedBody } from './support/hostile-cases.js'

/**
 * Everything a device in the field may send that it should not. Each case names its expected status
 * and error paths; none may get a 5xx, the gateway must stay up, and nothing of a refused request
 * may reach either store.
 */
const fixture = usePipelineFixture()
let hostile: { id: number; apiKey: string }
let seeder: { id: number; apiKey: string }

function send(apiKey: string, body: Case['body'], contentType = 'application/json') {
  const payload = bodyBytes(body)
  return fetch(`${fixture.pipeline.baseUrl}/api/v1/telemetry`, {
    method: 'POST',
    headers: { 'content-type': contentType, 'x-api-key': apiKey },
    body: payload,
  })
}

beforeAll(async () => {
  hostile = await fixture.pipeline.registerDevice('hostile')
  seeder = await fixture.pipeline.registerDevice('seeder')
  const seeded = await send(seeder.apiKey, seedBody)
  expect(seeded.status).toBe(202)
})

describe('hostile payloads', () => {
  it(`has at least 40 refused cases (${refused.length})`, () => {
    expect(refused.length).toBeGreaterThanOrEqual(40)
  })

  it.each(refused)('$name → $status', async ({ body, contentType, status, paths }) => {
    const response = await send(hostile.apiKey, body, contentType)
    expect(response.status).toBe(status)
    const answer = (await response.json()) as {
      statusCode: number
      message: string
      errors?: { path: string }[]
    }
    expect(answer.statusCode).toBe(status)
    expect(answer.message).toEqual(expect.any(String))
    if (paths) expect(answer.errors?.map((e) => e.path)).toEqual(paths)
  })

  it('answers a 50 MB body with 413 before reading it', async () => {
    const { status, body } = await postRaw(Buffer.alloc(50 * 1024 * 1024, 0x20))
    expect(status).toBe(413)
    expect(JSON.parse(body)).toMatchObject({ statusCode: 413 })
  })

  it('accepts what is odd but valid, and stores it as documented', async () => {
    const device = await fixture.pipeline.registerDevice('tolerated')
    const t = Date.UTC(2026, 10, 27, 6)
    const bodies = [
      `{"timestamp": ${t}, "data": {"dup": 1, "dup": 2}}`, // duplicate keys: the last one wins
      `{"timestamp": ${t + 1}, "data": {"zero": -0}}`,
      `{"timestamp": ${t + 2}, "data": {"big": 9007199254740993}}`, // beyond 2^53: stored as the float it parses to
      `{"timestamp": ${t + 3}, "data": {"constructor": 1, "toString": "x"}}`,
      `{"timestamp": ${t + 4}, "data": {"gps": {"lat": 48.1, "lon": 11.5}}}`,
    ]
    for (const body of bodies) expect((await send(device.apiKey, body)).status).toBe(202)
    const rows = await waitFor(
      async () => {
        const stored = await fixture.influx.rowsOf(device.id)
        return stored.length === 5 && stored
      },
      { what: 'the tolerated points in InfluxDB' },
    )
    expect(rows.map((r) => [r.dup, r.zero, r.big, r.constructor, r['gps.lat']])).toEqual([
      [2, null, null, null, null],
      [null, 0, null, null, null],
      [null, null, 9007199254740992, null, null],
      [null, null, null, 1, null],
      [null, null, null, null, 48.1],
    ])
    const [pg] = await fixture.db.sql<{ data: Record<string, unknown> }[]>`
      SELECT data FROM telemetry WHERE device_id = ${device.id} ORDER BY time DESC LIMIT 1`
    expect(pg?.data).toEqual({ 'gps.lat': 48.1, 'gps.lon': 11.5 })
  })

  it('kept the gateway up, and stored nothing of any refused request', async () => {
    expect((await fetch(`${fixture.pipeline.baseUrl}/health`)).status).toBe(200)
    expect((await send(hostile.apiKey, { data: { level: 2 } })).status).toBe(202)
    await fixture.pipeline.drained()
    const [pg] = await fixture.db.sql<
      { n: number }[]
    >`SELECT count(*)::int AS n FROM telemetry WHERE device_id = ${hostile.id}`
    expect(pg?.n).toBe(1)
    expect((await fixture.influx.rowsOf(hostile.id)).map((r) => r.level)).toEqual([2])
    const counts = await fixture.pipeline.queueCounts()
    expect(counts['store-postgres']?.failed).toBe(0)
    expect(counts['store-influx']?.failed).toBe(0)
  })
})

/** POSTs a large body with node:http, reading the answer even if the server stops reading early. */
function postRaw(body: Buffer): Promise<{ status: number; body: string }> {
  const url = new URL('/api/v1/telemetry', fixture.pipeline.baseUrl)
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-api-key': hostile.apiKey,
        'content-length': body.length,
      },
    })
    req.on('response', (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => {
        text += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('error', reject)
    req.end(body)
  })
}
