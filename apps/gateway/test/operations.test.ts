import { Writable } from 'node:stream'
import { loadGatewayConfig } from '@iotflow/config'
import {
  createTestDatabase,
  ScrapedMetrics,
  serviceUrls,
  type TestDatabase,
  uniqueName,
} from '@iotflow/testkit'
import { Validator } from '@seriousme/openapi-schema-validator'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../src/app.js'
import { gatewayLoggerOptions } from '../src/lib/logger-options.js'
import { ADMIN_TOKEN, admin, build, registerDevice, type TestGateway } from './helper.js'

let gateway: TestGateway
beforeAll(async () => {
  gateway = await build()
})
afterAll(async () => {
  await gateway?.close()
})

type OpenApiDocument = {
  servers?: { url: string }[]
  paths: Record<string, Record<string, Operation>>
  components: { securitySchemes: Record<string, unknown> }
}
type Operation = {
  security?: Record<string, string[]>[]
  requestBody?: { content: Record<string, { examples?: Record<string, { value: unknown }> }> }
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>
}

describe('the OpenAPI document', () => {
  const documentOf = async () => (await gateway.app.inject({ url: '/docs/json' })).json() as OpenApiDocument

  it('is valid OpenAPI 3 for an independent validator', async () => {
    const result = await new Validator().validate(await documentOf())
    expect(result.errors).toBeUndefined()
    expect(result.valid).toBe(true)
  })

  it('gives every response code of every operation a schema, and hides the queue dashboard', async () => {
    const document = await documentOf()
    const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => ({ path, method, operation })),
    )
    expect(operations.map((o) => `${o.method} ${o.path}`)).toEqual(
      expect.arrayContaining([
        'post /api/v1/telemetry',
        'post /api/v1/devices',
        'get /metrics',
        'get /health/ready',
        'post /write',
        'post /api/v2/write',
        'get /ping',
      ]),
    )
    for (const { path, method, operation } of operations) {
      const codes = Object.keys(operation.responses)
      expect(codes.length, `${method} ${path}`).toBeGreaterThan(0)
      for (const code of codes) {
        // A 204 has no body by definition (line protocol's answers): a description is all it has.
        if (code === '204') continue
        const content = Object.values(operation.responses[code]?.content ?? {})
        expect(content.length, `${method} ${path} ${code}`).toBeGreaterThan(0)
        for (const media of content) expect(media.schema, `${method} ${path} ${code}`).toBeDefined()
      }
    }
    expect(Object.keys(document.paths).filter((path) => path.startsWith('/admin'))).toEqual([])
  })

  it('has both security schemes, relative servers, and an example per telemetry body shape', async () => {
    const document = await documentOf()
    expect(document.servers).toEqual([expect.objectContaining({ url: '/' })])
    expect(document.components.securitySchemes).toMatchObject({
      adminBearer: { type: 'http', scheme: 'bearer' },
      deviceApiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
    })
    for (const path of ['/api/v1/telemetry', '/api/v1/devices/telemetry']) {
      const operation = document.paths[path]?.post
      expect(operation?.security).toEqual([{ deviceApiKey: [] }])
      const examples = operation?.requestBody?.content['application/json']?.examples ?? {}
      const values = Object.values(examples).map((example) => example.value)
      expect(values.some((v) => Array.isArray(v))).toBe(true)
      expect(values.some((v) => !Array.isArray(v) && typeof v === 'object' && v && 'points' in v)).toBe(true)
      expect(values.some((v) => !Array.isArray(v) && typeof v === 'object' && v && 'data' in v)).toBe(true)
    }
    expect(document.paths['/api/v1/devices']?.post?.security).toEqual([{ adminBearer: [] }])
  })

  it('documents examples that the gateway really accepts', async () => {
    const device = await registerDevice(gateway.app)
    const document = await documentOf()
    const examples =
      document.paths['/api/v1/telemetry']?.post?.requestBody?.content['application/json']?.examples
    for (const [name, example] of Object.entries(examples ?? {})) {
      const response = await gateway.app.inject({
        method: 'POST',
        url: '/api/v1/telemetry',
        headers: { 'x-api-key': device.api_key },
        payload: example.value as object,
      })
      expect(response.statusCode, `${name}: ${response.body}`).toBe(202)
    }
  })
})

describe('the queue dashboard at /admin/queues', () => {
  const basic = (user: string, password: string) =>
    `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

  it('refuses without credentials, asking the browser for a login', async () => {
    for (const url of ['/admin/queues', '/admin/queues/api/queues']) {
      const response = await gateway.app.inject({ url })
      expect(response.statusCode).toBe(401)
      expect(response.headers['www-authenticate']).toMatch(/^Basic realm="IoTFlow admin"/)
      expect(response.json()).toMatchObject({ statusCode: 401, error: 'Unauthorized' })
    }
  })

  it('refuses a wrong password or token', async () => {
    for (const authorization of [basic('admin', 'not-the-admin-token'), 'Bearer not-the-admin-token']) {
      const response = await gateway.app.inject({
        url: '/admin/queues/api/queues',
        headers: { authorization },
      })
      expect(response.statusCode).toBe(401)
    }
  })

  it('lists every pipeline queue with basic auth or the bearer token', async () => {
    for (const authorization of [basic('operator', ADMIN_TOKEN), admin.authorization]) {
      const response = await gateway.app.inject({
        url: '/admin/queues/api/queues',
        headers: { authorization },
      })
      expect(response.statusCode).toBe(200)
      const names = (response.json() as { queues: { name: string }[] }).queues.map((q) => q.name)
      expect(names.sort()).toEqual([
        'alert-deliver',
        'alert-evaluate',
        'ingest-batches',
        'store-influx',
        'store-postgres',
      ])
    }
    const page = await gateway.app.inject({ url: '/admin/queues', headers: admin })
    expect(page.statusCode).toBe(200)
    expect(page.body).toContain('<title>IoTFlow queues</title>')
  })
})

describe('GET /metrics', () => {
  it('counts accepted and refused points by transport and reason', async () => {
    const device = await registerDevice(gateway.app)
    const send = (payload: unknown, key: string | undefined = device.api_key) =>
      gateway.app.inject({
        method: 'POST',
        url: '/api/v1/telemetry',
        headers: key === undefined ? {} : { 'x-api-key': key },
        payload: payload as object,
      })
    const scrape = async () => new ScrapedMetrics((await gateway.app.inject({ url: '/metrics' })).body)
    const before = await scrape()

    expect(
      (await send({ points: [{ data: { t: 1 } }, { data: { t: 2 } }, { data: { t: 3 } }] })).statusCode,
    ).toBe(202)
    expect((await send([{ data: { t: 1 } }, { data: {} }])).statusCode).toBe(400)
    expect((await send({ data: { t: 1 } }, 'iot_unknown')).statusCode).toBe(401)

    const after = await scrape()
    const delta = (name: string, labels: Record<string, string>) =>
      after.value(name, labels) - before.value(name, labels)
    expect(delta('iotflow_points_accepted_total', { transport: 'http' })).toBe(3)
    expect(delta('iotflow_points_refused_total', { transport: 'http', reason: 'invalid' })).toBe(2)
    expect(delta('iotflow_points_refused_total', { transport: 'http', reason: 'unauthenticated' })).toBe(1)
    expect(delta('iotflow_ingest_messages_total', { transport: 'http', outcome: 'accepted' })).toBe(1)
    expect(after.value('iotflow_queue_jobs', { queue: 'store-postgres', state: 'waiting' })).toBeGreaterThan(
      0,
    )
    expect(after.value('iotflow_dependency_up', { dependency: 'redis' })).toBe(1)
    expect(after.value('iotflow_dependency_up', { dependency: 'postgres' })).toBe(1)
    expect(after.value('process_resident_memory_bytes')).toBeGreaterThan(0)
    expect(after.has('nodejs_eventloop_lag_seconds')).toBe(true)
  })
})

describe('request logs', () => {
  let db: TestDatabase
  beforeAll(async () => {
    db = await createTestDatabase()
  })
  afterAll(async () => {
    await db?.drop()
  })

  it('are JSON lines with a request id and the device id, and never hold a key or the admin token', async () => {
    const lines: string[] = []
    const stream = new Writable({
      write(chunk, _encoding, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean))
        done()
      },
    })
    const config = loadGatewayConfig({
      ADMIN_TOKEN,
      DATABASE_URL: db.url,
      REDIS_URL: serviceUrls.redis,
      QUEUE_PREFIX: uniqueName('logs'),
      LOG_LEVEL: 'trace',
    })
    const app = await buildApp(config, { logger: { ...gatewayLoggerOptions(config), stream } })
    try {
      const device = await registerDevice(app)
      const key = device.api_key
      const headers = { 'x-api-key': key, authorization: `Bearer ${ADMIN_TOKEN}` }
      await app.inject({ method: 'POST', url: '/api/v1/telemetry', headers, payload: { data: { t: 1 } } })
      await app.inject({
        method: 'POST',
        url: '/api/v1/telemetry',
        headers,
        payload: { data: {}, api_key: key },
      })
      await app.inject({ method: 'POST', url: `/api/v1/telemetry?api_key=${key}`, headers, payload: '{' })
      await app.inject({
        url: '/admin/queues',
        headers: { authorization: `Basic ${btoa(`a:${ADMIN_TOKEN}`)}` },
      })

      const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
      // One line per request answered (the registration, three telemetry requests, the dashboard).
      expect(records.filter((r) => r.msg === 'request completed')).toHaveLength(5)
      const telemetryDone = records.filter(
        (r) =>
          r.msg === 'request completed' && r.device_id === device.device.id && typeof r.reqId === 'string',
      )
      expect(telemetryDone.length).toBeGreaterThanOrEqual(2)
      const everything = lines.join('\n')
      expect(everything).not.toContain(key)
      expect(everything).not.toContain(key.slice(4)) // the random part alone
      expect(everything).not.toContain(ADMIN_TOKEN)
    } finally {
      await app.close()
    }
  })
})
