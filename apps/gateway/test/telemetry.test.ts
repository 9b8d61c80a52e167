import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { build, registerDevice, type TestGateway } from './helper.js'

let gateway: TestGateway
beforeAll(async () => {
  gateway = await build({ BODY_LIMIT_BYTES: '4096', RETENTION_DAYS: '2' })
})
afterAll(async () => {
  await gateway?.close()
})

const send = (apiKey: string, payload: string, contentType = 'application/json') =>
  gateway.app.inject({
    method: 'POST',
    url: '/api/v1/telemetry',
    headers: { 'x-api-key': apiKey, 'content-type': contentType },
    payload,
  })

describe('POST /api/v1/telemetry refusals', () => {
  it('answers 403 for an inactive device', async () => {
    const { device, api_key } = await registerDevice(gateway.app)
    await gateway.db.sql`UPDATE devices SET status = 'inactive' WHERE id = ${device.id}`
    const response = await send(api_key, '{"data": {"v": 1}}')
    expect(response.statusCode).toBe(403)
  })

  it('answers 415 for a content type other than JSON', async () => {
    const { api_key } = await registerDevice(gateway.app)
    expect((await send(api_key, 'v=1', 'text/plain')).statusCode).toBe(415)
  })

  it('answers 413 for a body over the limit', async () => {
    const { api_key } = await registerDevice(gateway.app)
    const points = Array.from({ length: 200 }, (_, i) => ({ data: { value: i } }))
    const response = await send(api_key, JSON.stringify({ points }))
    expect(response.statusCode).toBe(413)
    expect(response.json()).toMatchObject({ statusCode: 413, error: 'Payload Too Large' })
  })

  it('answers 400 for a point older than the retention period, which would be dropped at once', async () => {
    const { api_key } = await registerDevice(gateway.app)
    const response = await send(
      api_key,
      JSON.stringify({ timestamp: Date.now() - 3 * 86_400_000, data: { v: 1 } }),
    )
    expect(response.statusCode).toBe(400)
    expect(response.json().errors).toEqual([
      { path: 'timestamp', message: 'is older than the retention period (2 days)' },
    ])
    expect(
      (await send(api_key, JSON.stringify({ timestamp: Date.now() - 86_400_000, data: { v: 1 } })))
        .statusCode,
    ).toBe(202)
  })

  it('answers 400 for a __proto__ key instead of parsing it', async () => {
    const { api_key } = await registerDevice(gateway.app)
    const response = await send(api_key, '{"data": {"v": 1}, "__proto__": {"polluted": true}}')
    expect(response.statusCode).toBe(400)
  })
})

describe('operations', () => {
  it('answers /health while alive and /health/ready with each dependency', async () => {
    expect((await gateway.app.inject({ url: '/health' })).json()).toEqual({ status: 'healthy' })
    const ready = await gateway.app.inject({ url: '/health/ready' })
    expect(ready.statusCode).toBe(200)
    expect(ready.json()).toMatchObject({
      status: 'ready',
      dependencies: { redis: { status: 'up' }, postgres: { status: 'up' } },
      queues: {
        'store-postgres': { waiting: expect.any(Number) },
        'store-influx': { waiting: expect.any(Number) },
      },
    })
  })

  it('documents every route with its security scheme in the OpenAPI document', async () => {
    const doc = (await gateway.app.inject({ url: '/docs/json' })).json()
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual([
      'adminBearer',
      'deviceApiKey',
      'influxBasic',
      'influxQueryPassword',
      'influxToken',
    ])
    expect(doc.paths['/api/v2/write'].post.security).toEqual([{ influxToken: [] }])
    expect(Object.keys(doc.paths['/write'].post.responses)).toEqual(
      expect.arrayContaining(['204', '400', '401', '403', '413', '415', '422', '429', '503']),
    )
    expect(doc.paths['/api/v1/telemetry'].post.security).toEqual([{ deviceApiKey: [] }])
    expect(Object.keys(doc.paths['/api/v1/telemetry'].post.responses)).toEqual(
      expect.arrayContaining(['202', '400', '401', '403', '413', '415', '503']),
    )
    expect(doc.paths['/api/v1/devices'].post.security).toEqual([{ adminBearer: [] }])
  })
})
