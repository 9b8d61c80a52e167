import { waitFor } from '@iotflow/testkit'
import type { InjectOptions } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { admin, build, registerDevice, type TestGateway } from './helper.js'

let gateway: TestGateway
let peer: TestGateway // a second instance on the same database and queues

beforeAll(async () => {
  gateway = await build({ LAST_SEEN_FLUSH_MS: '300' })
  peer = await build({ LAST_SEEN_FLUSH_MS: '300' }, gateway)
})
afterAll(async () => {
  await peer?.close()
  await gateway?.close()
})

const inject = (target: TestGateway, options: InjectOptions) => target.app.inject(options)
const sendPoint = (target: TestGateway, apiKey: string) =>
  inject(target, {
    method: 'POST',
    url: '/api/v1/telemetry',
    headers: { 'x-api-key': apiKey },
    payload: { data: { v: 1 } },
  })

/** Waits (up to a second) until `apiKey` gets `status` from the instance. */
const refusedWithin = (target: TestGateway, apiKey: string, status: number) =>
  waitFor(async () => (await sendPoint(target, apiKey)).statusCode === status, {
    timeoutMs: 1000,
    intervalMs: 20,
    what: `a ${status}`,
  })

describe('admin device routes', () => {
  it('lists devices paged and filtered by status, type and search', async () => {
    for (const [name, device_type, location] of [
      ['list-a', 'meter', 'hall'],
      ['list-b', 'meter', 'roof'],
      ['list-c', 'camera', 'hall'],
    ]) {
      await inject(gateway, {
        method: 'POST',
        url: '/api/v1/devices',
        headers: admin,
        payload: { name, device_type, location },
      })
    }
    const meters = (
      await inject(gateway, { url: '/api/v1/devices?device_type=meter&per_page=1&page=2', headers: admin })
    ).json()
    expect(meters.devices.map((d: { name: string }) => d.name)).toEqual(['list-b'])
    expect(meters.pagination).toEqual({ page: 2, per_page: 1, total: 2, pages: 2 })
    const hall = (await inject(gateway, { url: '/api/v1/devices?search=HALL', headers: admin })).json()
    expect(hall.devices.map((d: { name: string }) => d.name).sort()).toEqual(['list-a', 'list-c'])
    const inactive = (
      await inject(gateway, { url: '/api/v1/devices?status=inactive', headers: admin })
    ).json()
    expect(inactive.pagination.total).toBe(0)
    expect((await inject(gateway, { url: '/api/v1/devices' })).statusCode).toBe(401)
    expect((await inject(gateway, { url: '/api/v1/devices?per_page=0', headers: admin })).statusCode).toBe(
      400,
    )
  })

  it('gets and updates a device, answering 404, 400 and 409 where due', async () => {
    const { device } = await registerDevice(gateway.app, 'patch-me')
    const got = await inject(gateway, { url: `/api/v1/devices/${device.id}`, headers: admin })
    expect(got.json().device).toMatchObject({ id: device.id, name: 'patch-me' })
    const patched = await inject(gateway, {
      method: 'PATCH',
      url: `/api/v1/devices/${device.id}`,
      headers: admin,
      payload: { location: 'lab', firmware_version: '2.0.1', metadata: { shelf: 4 } },
    })
    expect(patched.statusCode).toBe(200)
    expect(patched.json().device).toMatchObject({
      location: 'lab',
      firmware_version: '2.0.1',
      metadata: { shelf: 4 },
    })

    expect((await inject(gateway, { url: '/api/v1/devices/999999', headers: admin })).statusCode).toBe(404)
    expect((await inject(gateway, { url: '/api/v1/devices/abc', headers: admin })).statusCode).toBe(400)
    const empty = await inject(gateway, {
      method: 'PATCH',
      url: `/api/v1/devices/${device.id}`,
      headers: admin,
      payload: {},
    })
    expect(empty.statusCode).toBe(400)
    await registerDevice(gateway.app, 'taken')
    const clash = await inject(gateway, {
      method: 'PATCH',
      url: `/api/v1/devices/${device.id}`,
      headers: admin,
      payload: { name: 'taken' },
    })
    expect(clash.statusCode).toBe(409)
  })
})

describe('revocation reaches every instance within a second', () => {
  it('deactivation stops the key on this and the other instance', async () => {
    const { device, api_key } = await registerDevice(gateway.app)
    // Both instances have the key cached.
    expect((await sendPoint(gateway, api_key)).statusCode).toBe(202)
    expect((await sendPoint(peer, api_key)).statusCode).toBe(202)

    const deleted = await inject(gateway, {
      method: 'DELETE',
      url: `/api/v1/devices/${device.id}`,
      headers: admin,
    })
    expect(deleted.json().device.status).toBe('inactive')
    await refusedWithin(gateway, api_key, 401)
    await refusedWithin(peer, api_key, 401)
    // Reactivating does not bring the revoked key back.
    await inject(gateway, {
      method: 'PATCH',
      url: `/api/v1/devices/${device.id}`,
      headers: admin,
      payload: { status: 'active' },
    })
    expect((await sendPoint(peer, api_key)).statusCode).toBe(401)
  })

  it('rotation: the new key works, the old one stops everywhere', async () => {
    const { device, api_key: oldKey } = await registerDevice(gateway.app)
    expect((await sendPoint(peer, oldKey)).statusCode).toBe(202)
    const rotated = await inject(gateway, {
      method: 'POST',
      url: `/api/v1/devices/${device.id}/rotate-key`,
      headers: admin,
    })
    expect(rotated.statusCode).toBe(200)
    const newKey = rotated.json().api_key as string
    expect(newKey).not.toBe(oldKey)
    await refusedWithin(peer, oldKey, 401)
    await refusedWithin(gateway, oldKey, 401)
    expect((await sendPoint(peer, newKey)).statusCode).toBe(202)
    expect(
      (await inject(gateway, { method: 'POST', url: '/api/v1/devices/999999/rotate-key', headers: admin }))
        .statusCode,
    ).toBe(404)
  })

  it('an inactive status set by PATCH is a 403 everywhere', async () => {
    const { device, api_key } = await registerDevice(gateway.app)
    expect((await sendPoint(peer, api_key)).statusCode).toBe(202)
    await inject(gateway, {
      method: 'PATCH',
      url: `/api/v1/devices/${device.id}`,
      headers: admin,
      payload: { status: 'inactive' },
    })
    await refusedWithin(peer, api_key, 403)
  })
})

describe('the device itself', () => {
  it('reads its status with last_seen and is_online after a heartbeat', async () => {
    const { device, api_key } = await registerDevice(gateway.app)
    const before = (
      await inject(gateway, { url: '/api/v1/devices/status', headers: { 'x-api-key': api_key } })
    ).json()
    // Reading its status is itself a sign of life.
    expect(before.device).toMatchObject({ id: device.id, is_online: true })
    const beat = await inject(gateway, {
      method: 'POST',
      url: '/api/v1/devices/heartbeat',
      headers: { 'x-api-key': api_key },
    })
    expect(beat.json()).toMatchObject({ status: 'ok', last_seen: expect.any(String) })
    expect((await inject(gateway, { url: '/api/v1/devices/status' })).statusCode).toBe(401)
  })

  it('keeps last_seen current from ingest with one batched write, not a write per request', async () => {
    const slowFlush = await build({ LAST_SEEN_FLUSH_MS: '3000' }, gateway)
    try {
      const { device, api_key } = await registerDevice(slowFlush.app)
      const lastSeen = async () =>
        (
          await gateway.db.sql<
            { last_seen: Date | null }[]
          >`SELECT last_seen FROM devices WHERE id = ${device.id}`
        )[0]?.last_seen
      const sent = Date.now()
      for (let i = 0; i < 10; i++) expect((await sendPoint(slowFlush, api_key)).statusCode).toBe(202)
      expect(await lastSeen()).toBeNull() // not written per request…
      const written = await waitFor(lastSeen, { timeoutMs: 5000, what: 'the last_seen flush' }) // …but by the flush
      expect(written.getTime()).toBeGreaterThanOrEqual(sent - 5)
    } finally {
      await slowFlush.close()
    }
  })
})
