import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN_TOKEN, admin, build, registerDevice, type TestGateway } from './helper.js'

let gateway: TestGateway
beforeAll(async () => {
  gateway = await build()
})
afterAll(async () => {
  await gateway?.close()
})

describe('POST /api/v1/devices', () => {
  it('registers a device and shows its API key once, storing only its hash', async () => {
    const response = await gateway.app.inject({
      method: 'POST',
      url: '/api/v1/devices',
      headers: admin,
      payload: { name: 'greenhouse-1', device_type: 'climate', location: 'north', metadata: { rack: 3 } },
    })
    expect(response.statusCode).toBe(201)
    const body = response.json()
    expect(body.device).toMatchObject({
      name: 'greenhouse-1',
      device_type: 'climate',
      location: 'north',
      metadata: { rack: 3 },
      status: 'active',
      last_seen: null,
    })
    expect(body.api_key).toMatch(/^iot_[A-Za-z0-9_-]{43}$/)
    expect(body.device.api_key_prefix).toBe(body.api_key.slice(0, 12))
    expect(JSON.stringify(body.device)).not.toContain(body.api_key)

    const [row] = await gateway.db.sql<{ api_key_hash: Buffer }[]>`
      SELECT api_key_hash FROM devices WHERE id = ${body.device.id}`
    expect(row?.api_key_hash).toEqual(createHash('sha256').update(body.api_key).digest())
  })

  it('answers 409 for a duplicate name', async () => {
    await registerDevice(gateway.app, 'twin')
    const response = await gateway.app.inject({
      method: 'POST',
      url: '/api/v1/devices',
      headers: admin,
      payload: { name: 'twin' },
    })
    expect(response.statusCode).toBe(409)
    expect(response.json()).toMatchObject({ statusCode: 409, message: expect.stringContaining('twin') })
  })

  it('accepts the predecessor alias and its `admin <token>` scheme', async () => {
    const response = await gateway.app.inject({
      method: 'POST',
      url: '/api/v1/devices/register',
      headers: { authorization: `admin ${ADMIN_TOKEN}` },
      payload: { name: 'legacy' },
    })
    expect(response.statusCode).toBe(201)
  })

  it('answers 401 without the admin token or with a wrong one', async () => {
    for (const headers of [{}, { authorization: 'Bearer not-the-token' }, { authorization: ADMIN_TOKEN }]) {
      const response = await gateway.app.inject({
        method: 'POST',
        url: '/api/v1/devices',
        headers,
        payload: { name: 'x' },
      })
      expect(response.statusCode).toBe(401)
    }
  })

  it('answers 400 naming a missing name and an unknown property', async () => {
    const missing = await gateway.app.inject({
      method: 'POST',
      url: '/api/v1/devices',
      headers: admin,
      payload: {},
    })
    expect(missing.statusCode).toBe(400)
    expect(missing.json().errors[0].message).toContain("'name'")
    const unknown = await gateway.app.inject({
      method: 'POST',
      url: '/api/v1/devices',
      headers: admin,
      payload: { name: 'y', colour: 'red' },
    })
    expect(unknown.statusCode).toBe(400)
    expect(unknown.json().errors).toEqual([{ path: 'body.colour', message: 'is not an allowed property' }])
  })
})
