import { waitFor } from '@iotflow/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { admin, build, registerDevice, type TestGateway } from './helper.js'

/**
 * Operator tokens besides ADMIN_TOKEN, with roles, and the audit log of every change made with an
 * operator credential: through the gateway itself on a database of its own, and a second gateway on
 * the same database for revocation.
 */
let gateway: TestGateway
let peer: TestGateway
let readSecret: string
let adminSecret: string
let adminTokenId: number
let deviceId: number

const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` })

beforeAll(async () => {
  gateway = await build()
  peer = await build({}, gateway)
  deviceId = (await registerDevice(gateway.app)).device.id
})

afterAll(async () => {
  await peer?.close()
  await gateway?.close()
})

describe('creating and listing', () => {
  it('creates tokens with a role, shows each secret once, lists them without secrets, refuses a name in use', async () => {
    const create = (payload: object, headers = admin) =>
      gateway.app.inject({ method: 'POST', url: '/api/v1/operator-tokens', headers, payload })
    const read = await create({ name: 'dashboards', role: 'read' })
    expect(read.statusCode).toBe(201)
    expect(read.json()).toMatchObject({
      token: { name: 'dashboards', role: 'read' },
      secret: expect.stringMatching(/^iotop_/),
    })
    readSecret = read.json().secret
    const ops = await create({ name: 'ops', role: 'admin' })
    expect(ops.statusCode).toBe(201)
    adminSecret = ops.json().secret
    adminTokenId = ops.json().token.id

    const list = await gateway.app.inject({ url: '/api/v1/operator-tokens', headers: admin })
    expect(list.statusCode).toBe(200)
    expect(list.json().tokens.map((t: { name: string; role: string }) => [t.name, t.role])).toEqual([
      ['dashboards', 'read'],
      ['ops', 'admin'],
    ])
    expect(list.body).not.toContain(readSecret)
    expect(list.body).not.toContain(adminSecret)

    expect((await create({ name: 'ops', role: 'read' })).statusCode).toBe(409)
    const badRole = await create({ name: 'x', role: 'owner' })
    expect(badRole.statusCode).toBe(400)
    expect(badRole.body).toMatch(/role/)
    // Unknown secrets and wrong schemes are 401, not 403.
    expect((await create({ name: 'y', role: 'read' }, bearer('iotop_not-a-token'))).statusCode).toBe(401)
  })
})

describe('a read token', () => {
  it('reads devices, telemetry, ingest status and the dashboard', async () => {
    const headers = bearer(readSecret)
    for (const url of [
      '/api/v1/devices',
      `/api/v1/devices/${deviceId}`,
      `/api/v1/telemetry/${deviceId}`,
      `/api/v1/telemetry/${deviceId}/latest`,
      '/admin/queues/api/queues',
    ]) {
      const response = await gateway.app.inject({ url, headers })
      expect(response.statusCode, `${url}: ${response.body}`).toBe(200)
    }
    const basic = { authorization: `Basic ${Buffer.from(`anyone:${readSecret}`).toString('base64')}` }
    expect((await gateway.app.inject({ url: '/admin/queues', headers: basic })).statusCode).toBe(200)
  })

  it("gets 403 on every change, the dashboard's retry, clean and pause included, and on tokens and audit", async () => {
    const headers = bearer(readSecret)
    const attempts = [
      { method: 'POST', url: '/api/v1/devices', payload: { name: 'not-allowed' } },
      { method: 'PATCH', url: `/api/v1/devices/${deviceId}`, payload: { description: 'x' } },
      { method: 'DELETE', url: `/api/v1/devices/${deviceId}` },
      { method: 'POST', url: `/api/v1/devices/${deviceId}/rotate-key` },
      { method: 'POST', url: '/api/v1/gateways', payload: { name: 'gw', device_ids: [deviceId] } },
      { method: 'PUT', url: '/admin/queues/api/queues/store-postgres/retry/failed' },
      { method: 'PUT', url: '/admin/queues/api/queues/store-postgres/clean/completed' },
      { method: 'PUT', url: '/admin/queues/api/queues/store-postgres/pause' },
      { method: 'POST', url: '/api/v1/operator-tokens', payload: { name: 'escalate', role: 'admin' } },
      { method: 'GET', url: '/api/v1/operator-tokens' },
      { method: 'GET', url: '/api/v1/audit' },
    ] as const
    for (const attempt of attempts) {
      const response = await gateway.app.inject({ ...attempt, headers })
      expect(response.statusCode, `${attempt.method} ${attempt.url}: ${response.body}`).toBe(403)
    }
    const device = await gateway.app.inject({ url: `/api/v1/devices/${deviceId}`, headers: admin })
    expect(device.json().device.status).toBe('active')
  })
})

describe('an admin token', () => {
  it('changes what ADMIN_TOKEN changes', async () => {
    const created = await gateway.app.inject({
      method: 'POST',
      url: '/api/v1/devices',
      headers: bearer(adminSecret),
      payload: { name: 'made-by-ops' },
    })
    expect(created.statusCode).toBe(201)
  })
})

describe('revocation', () => {
  it('stops a token at once, on every gateway', async () => {
    expect((await peer.app.inject({ url: '/api/v1/devices', headers: bearer(adminSecret) })).statusCode).toBe(
      200,
    )
    const revoked = await gateway.app.inject({
      method: 'DELETE',
      url: `/api/v1/operator-tokens/${adminTokenId}`,
      headers: admin,
    })
    expect(revoked.statusCode).toBe(204)
    for (const app of [gateway.app, peer.app]) {
      expect((await app.inject({ url: '/api/v1/devices', headers: bearer(adminSecret) })).statusCode).toBe(
        401,
      )
    }
    const again = await gateway.app.inject({
      method: 'DELETE',
      url: `/api/v1/operator-tokens/${adminTokenId}`,
      headers: admin,
    })
    expect(again.statusCode).toBe(404)
  })
})

describe('the audit log', () => {
  it('has every change made with an operator credential (who, what, when, from where), refused ones included, and no read', async () => {
    const since = new Date(Date.now() - 60_000).toISOString()
    type Entry = {
      token: { id: number | null; name: string; role: string }
      method: string
      route: string
      params: Record<string, unknown>
      status_code: number
      ip: string
      at: string
    }
    const read = async () =>
      (await gateway.app.inject({ url: `/api/v1/audit?since=${since}&limit=1000`, headers: admin })).json()
        .entries as Entry[]
    // Entries are written once each answer is sent.
    await waitFor(
      async () =>
        (await read()).some((e) => e.route === '/api/v1/operator-tokens/:id' && e.status_code === 404),
      {
        what: 'the last change in the audit log',
      },
    )
    const entries = await read()
    const summary = entries.map((e) => `${e.token.name} ${e.method} ${e.route} ${e.status_code}`)
    expect(summary).toContain('ops POST /api/v1/devices 201')
    expect(summary).toContain('dashboards POST /api/v1/devices 403')
    expect(summary).toContain('dashboards PUT /admin/queues/api/queues/:queueName/retry/:queueStatus 403')
    expect(summary).toContain('ADMIN_TOKEN DELETE /api/v1/operator-tokens/:id 204')
    expect(summary).toContain('ADMIN_TOKEN POST /api/v1/operator-tokens 409')
    expect(summary.filter((line) => line.includes(' GET '))).toEqual([])
    // An unknown secret is no operator's: nothing logged for it.
    expect(summary.filter((line) => line.includes('POST /api/v1/operator-tokens 401'))).toEqual([])

    const revocation = entries.find((e) => e.method === 'DELETE' && e.status_code === 204)
    expect(revocation).toMatchObject({
      token: { id: null, role: 'admin' },
      params: { id: adminTokenId },
      ip: '127.0.0.1',
    })
    const byOps = entries.find((e) => e.token.name === 'ops')
    expect(byOps?.token).toEqual({ id: adminTokenId, name: 'ops', role: 'admin' })
    expect(Date.parse(byOps?.at ?? '')).toBeGreaterThan(Date.parse(since))
    // Newest first.
    expect(entries.map((e) => e.at)).toEqual([...entries.map((e) => e.at)].sort().reverse())
  })

  it('refuses a since that is not a time', async () => {
    const response = await gateway.app.inject({ url: '/api/v1/audit?since=yesterday', headers: admin })
    expect(response.statusCode).toBe(400)
    expect(response.json().message).toMatch(/since/)
  })
})

describe('the OpenAPI document', () => {
  it('documents a 403 on every change an operator token may be refused', async () => {
    const document = (await gateway.app.inject({ url: '/docs/json' })).json() as {
      paths: Record<
        string,
        Record<string, { security?: Record<string, unknown>[]; responses: Record<string, unknown> }>
      >
    }
    const changes = Object.entries(document.paths).flatMap(([path, operations]) =>
      Object.entries(operations)
        .filter(([method, op]) => method !== 'get' && op.security?.some((scheme) => 'adminBearer' in scheme))
        .map(([method, op]) => ({
          route: `${method.toUpperCase()} ${path}`,
          documents403: '403' in op.responses,
        })),
    )
    expect(changes.length).toBeGreaterThanOrEqual(8)
    expect(changes.filter((change) => !change.documents403)).toEqual([])
  })
})
