import { setTimeout as sleep } from 'node:timers/promises'
import { loadGatewayConfig } from '@iotflow/config'
import { ScrapedMetrics, serviceUrls } from '@iotflow/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp, type GatewayApp } from '../apps/gateway/src/app.js'
import { usePipelineFixture } from './support/fixture.js'
import { ADMIN_TOKEN } from './support/pipeline.js'

// A bucket small enough to empty in a test: 10 points at once, 2 points a second after that.
const limits = { DEVICE_RATE_POINTS_PER_SECOND: '2', DEVICE_RATE_BURST_POINTS: '10' }
const fixture = usePipelineFixture({ writers: true, env: limits })
const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }

/** A second gateway on the same database, Redis and queues: the limit must be shared with it. */
let peer: GatewayApp
let peerUrl: string
beforeAll(async () => {
  peer = await buildApp(
    loadGatewayConfig({
      ...limits,
      ADMIN_TOKEN,
      DATABASE_URL: fixture.db.url,
      REDIS_URL: serviceUrls.redis,
      QUEUE_PREFIX: fixture.pipeline.queuePrefix,
      MIGRATE_ON_START: 'false',
    }),
    { logger: false },
  )
  await peer.listen({ host: '127.0.0.1', port: 0 })
  peerUrl = `http://127.0.0.1:${(peer.server.address() as { port: number }).port}`
})
afterAll(() => peer?.close())

let nextTime = Date.UTC(2026, 10, 29, 8)
/** `count` points with timestamps no other request of this file uses. */
const points = (count: number) => ({
  points: Array.from({ length: count }, () => ({ timestamp: nextTime++, data: { v: 1 } })),
})

function send(baseUrl: string, apiKey: string, body: unknown, path = '/api/v1/telemetry') {
  return fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
}

async function storedPoints(deviceId: number): Promise<number> {
  await fixture.pipeline.drained()
  const [row] = await fixture.db.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM telemetry WHERE device_id = ${deviceId}`
  expect((await fixture.influx.rowsOf(deviceId)).length).toBe(row?.n)
  return row?.n ?? 0
}

describe('per-device rate limits over HTTP', () => {
  it('shares one bucket between two gateways, answers 429 with Retry-After, refills over time, stores nothing refused', async () => {
    const device = await fixture.pipeline.registerDevice()
    const gatewayUrl = fixture.pipeline.baseUrl

    expect((await send(gatewayUrl, device.apiKey, points(7))).status).toBe(202)
    // 3 points left in the bucket, wherever the next request lands.
    const refused = await send(peerUrl, device.apiKey, points(5))
    expect(refused.status).toBe(429)
    const retryAfter = Number(refused.headers.get('retry-after'))
    expect(retryAfter).toBeGreaterThanOrEqual(1)
    expect(retryAfter).toBeLessThanOrEqual(2)
    expect(await refused.json()).toMatchObject({
      statusCode: 429,
      error: 'Too Many Requests',
      message: expect.stringContaining('rate limit'),
    })
    expect((await send(gatewayUrl, device.apiKey, points(5))).status).toBe(429)

    await sleep(retryAfter * 1000)
    expect((await send(gatewayUrl, device.apiKey, points(5))).status).toBe(202)
    expect(await storedPoints(device.id)).toBe(12)

    // The refusal this gateway answered (5 points), by its reason.
    const metrics = await ScrapedMetrics.from(`${gatewayUrl}/metrics`)
    expect(metrics.value('iotflow_points_refused_total', { reason: 'rate_limited' })).toBe(5)
  })

  it('refuses a request larger than the burst with a 413 that says it can never pass', async () => {
    const device = await fixture.pipeline.registerDevice()
    const response = await send(fixture.pipeline.baseUrl, device.apiKey, points(11))
    expect(response.status).toBe(413)
    const body = (await response.json()) as { message: string; errors: { message: string }[] }
    expect(body.errors[0]?.message).toBe(
      `11 points for device ${device.id}, more than its burst of 10 (split the request)`,
    )
    // The bucket was not touched: a full burst still passes.
    expect((await send(fixture.pipeline.baseUrl, device.apiKey, points(10))).status).toBe(202)
  })

  it("applies a device's own rate_limit set with PATCH on every gateway at once, and null restores the defaults", async () => {
    const device = await fixture.pipeline.registerDevice()
    // The peer learns the device (and caches it) before the change.
    expect((await send(peerUrl, device.apiKey, points(1))).status).toBe(202)

    type DeviceAnswer = { device: { rate_limit: unknown } }
    const patch = (rate_limit: unknown) =>
      fetch(`${fixture.pipeline.baseUrl}/api/v1/devices/${device.id}`, {
        method: 'PATCH',
        headers: admin,
        body: JSON.stringify({ rate_limit }),
      })
    const patched = await patch({ points_per_second: 1000, burst_points: 50 })
    expect(patched.status).toBe(200)
    expect(((await patched.json()) as DeviceAnswer).device.rate_limit).toEqual({
      points_per_second: 1000,
      burst_points: 50,
    })
    // 30 points: over the default burst of 10, within the device's own 50.
    expect((await send(peerUrl, device.apiKey, points(30))).status).toBe(202)

    expect((await patch({ points_per_second: 0, burst_points: 5 })).status).toBe(400)
    const reset = await patch(null)
    expect(((await reset.json()) as DeviceAnswer).device.rate_limit).toBeNull()
    expect((await send(peerUrl, device.apiKey, points(30))).status).toBe(413)
    expect(await storedPoints(device.id)).toBe(31)
  })

  it('applies a lowered rate_limit at once even where the old bucket was known far from its limit', async () => {
    const device = await fixture.pipeline.registerDevice()
    const patch = (rate_limit: unknown) =>
      fetch(`${fixture.pipeline.baseUrl}/api/v1/devices/${device.id}`, {
        method: 'PATCH',
        headers: admin,
        body: JSON.stringify({ rate_limit }),
      })
    expect((await patch({ points_per_second: 1000, burst_points: 1000 })).status).toBe(200)
    // The peer learns the bucket (first request), then admits by what it saw: far from the limit.
    for (let i = 0; i < 3; i++) expect((await send(peerUrl, device.apiKey, points(2))).status).toBe(202)
    expect((await patch({ points_per_second: 0.01, burst_points: 5 })).status).toBe(200)
    // The new limit, not the peer's view of the old one (on which all three would pass): of three
    // requests of 2 points at once, two fit the new burst of 5; then nothing for 100 s.
    const statuses = await Promise.all(
      [0, 1, 2].map(async () => (await send(peerUrl, device.apiKey, points(2))).status),
    )
    expect(statuses.sort()).toEqual([202, 202, 429])
    const refused = await send(peerUrl, device.apiKey, points(2))
    expect(refused.status).toBe(429)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(99)
    expect(await storedPoints(device.id)).toBe(10)
  })

  it('refuses a device its takes left in debt until it has refilled, with that wait as Retry-After', async () => {
    const device = await fixture.pipeline.registerDevice()
    const patched = await fetch(`${fixture.pipeline.baseUrl}/api/v1/devices/${device.id}`, {
      method: 'PATCH',
      headers: admin,
      body: JSON.stringify({ rate_limit: { points_per_second: 1, burst_points: 20 } }),
    })
    expect(patched.status).toBe(200)
    const gatewayUrl = fixture.pipeline.baseUrl
    // The gateway sees the bucket at 19; the peer, which has not seen it, takes 15 in Redis (4 left).
    expect((await send(gatewayUrl, device.apiKey, points(1))).status).toBe(202)
    expect((await send(peerUrl, device.apiKey, points(15))).status).toBe(202)
    // By its view (19, under a second old) the gateway admits 9 without asking: its MULTI takes
    // them from the 4 left, 5 into debt (within the bound: half a burst per instance).
    expect((await send(gatewayUrl, device.apiKey, points(9))).status).toBe(202)
    const bucket = await fixture.pipeline.redis.get(
      `{${fixture.pipeline.queuePrefix}}:bucket:device:${device.id}`,
    )
    expect(Number(bucket?.split(' ')[0])).toBeLessThan(0)
    // 1 point needs the 5 owed back and 1 more: 6 s at a point a second, from either gateway.
    for (const url of [gatewayUrl, peerUrl]) {
      const refused = await send(url, device.apiKey, points(1))
      expect(refused.status).toBe(429)
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(5)
      expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(6)
    }
    expect(await storedPoints(device.id)).toBe(25)
  })

  it('limits each device inside an edge gateway bulk request; one device over its limit refuses the whole request', async () => {
    const [a, b] = await Promise.all([fixture.pipeline.registerDevice(), fixture.pipeline.registerDevice()])
    const created = await fetch(`${fixture.pipeline.baseUrl}/api/v1/gateways`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ name: `site-${a.id}`, device_ids: [a.id, b.id] }),
    })
    const key = ((await created.json()) as { api_key: string }).api_key
    const bulk = (aCount: number, bCount: number) => ({
      points: [
        ...points(aCount).points.map((p) => ({ ...p, device_id: a.id })),
        ...points(bCount).points.map((p) => ({ ...p, device_id: b.id })),
      ],
    })
    // 18 points in one request, but 9 per device: each within its own burst.
    expect((await send(fixture.pipeline.baseUrl, key, bulk(9, 9), '/api/v1/telemetry/bulk')).status).toBe(202)
    const refused = await send(fixture.pipeline.baseUrl, key, bulk(0, 5), '/api/v1/telemetry/bulk')
    expect(refused.status).toBe(429)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    // a's own device route shares a's bucket (1 point left).
    expect((await send(fixture.pipeline.baseUrl, a.apiKey, points(3))).status).toBe(429)
    expect(await storedPoints(a.id)).toBe(9)
    expect(await storedPoints(b.id)).toBe(9)
  })

  it('limits line protocol writes in the same bucket: 429 with Retry-After, nothing of the request stored', async () => {
    const device = await fixture.pipeline.registerDevice()
    const lines = (count: number) =>
      Array.from({ length: count }, () => `env level=1i ${nextTime++}`).join('\n')
    const write = (count: number) =>
      fetch(`${fixture.pipeline.baseUrl}/api/v2/write?precision=ms`, {
        method: 'POST',
        headers: { authorization: `Token ${device.apiKey}` },
        body: lines(count),
      })
    expect((await write(8)).status).toBe(204)
    const refused = await write(5)
    expect(refused.status).toBe(429)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(((await refused.json()) as { code: string }).code).toBe('too many requests')
    // The JSON route draws on the same bucket.
    expect((await send(fixture.pipeline.baseUrl, device.apiKey, points(3))).status).toBe(429)
    expect(await storedPoints(device.id)).toBe(8)
  })
})
