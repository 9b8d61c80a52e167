import { uniqueName } from '@iotflow/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN_TOKEN, admin, build, type TestGateway } from './helper.js'

type Registered = { device: { id: number; name: string; api_key: string }; api_key: string }

const register = (gateway: TestGateway, remoteAddress: string, headers: Record<string, string> = {}) =>
  gateway.app.inject({
    method: 'POST',
    url: '/api/v1/devices/register',
    remoteAddress,
    headers,
    payload: { name: uniqueName('self-registered') },
  })

describe('open registration (REGISTRATION_MODE=open)', () => {
  const open = { REGISTRATION_MODE: 'open', REGISTRATION_PER_IP: '2' }
  let gateway: TestGateway
  let peer: TestGateway
  beforeAll(async () => {
    gateway = await build(open)
    peer = await build(open, gateway) // a second gateway on the same database and Redis keys
  })
  afterAll(async () => {
    await peer?.close()
    await gateway?.close()
  })

  it('registers without a token, answering the key as api_key and as device.api_key, and the key works', async () => {
    const response = await register(gateway, '198.51.100.7')
    expect(response.statusCode).toBe(201)
    const body = response.json() as Registered
    expect(body.api_key).toMatch(/^iot_/)
    expect(body.device.api_key).toBe(body.api_key)
    const status = await gateway.app.inject({
      method: 'GET',
      url: '/api/v1/devices/status',
      headers: { 'x-api-key': body.device.api_key },
    })
    expect(status.statusCode).toBe(200)
    expect(status.json().device.id).toBe(body.device.id)
  })

  it('limits each client address across gateways: 429 with Retry-After past REGISTRATION_PER_IP', async () => {
    const address = '203.0.113.9'
    expect((await register(gateway, address)).statusCode).toBe(201)
    expect((await register(peer, address)).statusCode).toBe(201)
    const refused = await register(gateway, address)
    expect(refused.statusCode).toBe(429)
    // One registration comes back every 150 s (2 per 5 minutes).
    const retryAfter = Number(refused.headers['retry-after'])
    expect(retryAfter).toBeGreaterThan(140)
    expect(retryAfter).toBeLessThanOrEqual(150)
    expect(refused.json()).toMatchObject({
      statusCode: 429,
      message: expect.stringContaining('at most 2 registrations per client address per 5 minutes'),
    })
    expect((await register(peer, address)).statusCode).toBe(429)
    // Another address has its own count; the admin is never limited, but its token must be right.
    expect((await register(peer, '203.0.113.10')).statusCode).toBe(201)
    expect((await register(gateway, address, admin)).statusCode).toBe(201)
    expect(
      (await register(gateway, address, { authorization: 'Bearer not-the-admin-token' })).statusCode,
    ).toBe(401)
  })
})

describe('registration by default (REGISTRATION_MODE=admin)', () => {
  let gateway: TestGateway
  beforeAll(async () => {
    gateway = await build()
  })
  afterAll(() => gateway?.close())

  it('needs the admin token, and answers the key both ways too', async () => {
    expect((await register(gateway, '198.51.100.8')).statusCode).toBe(401)
    const response = await register(gateway, '198.51.100.8', { authorization: `Bearer ${ADMIN_TOKEN}` })
    expect(response.statusCode).toBe(201)
    const body = response.json() as Registered
    expect(body.device.api_key).toBe(body.api_key)
  })
})
