import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { telemetryPartitionOf } from '@iotflow/db'
import { bullPrefix, createRedisConnection, queueCatalog } from '@iotflow/queue'
import {
  createTestDatabase,
  createTestInfluxDatabase,
  deleteKeys,
  freePort,
  registerDeviceOverHttp,
  serviceUrls,
  uniqueName,
  waitFor,
} from '@iotflow/testkit'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type AppName, type AppProcess, spawnApp } from './support/app-process.js'
import { bridgeEnv, brokerArgs, mosquittoPub, sharedBrokerUrl } from './support/mqtt.js'
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from './support/otlp-receiver.js'
import { ADMIN_TOKEN } from './support/pipeline.js'

// Real processes (dist/<app>/main.js) exporting with the real OTLP exporter to a receiver in this test.
const recordModuleLoads = fileURLToPath(new URL('./support/record-module-loads.mjs', import.meta.url))
// Each test a queue prefix of its own: apps a failed test leaves running never take another's jobs.
const queuePrefixes: string[] = []
const redis = createRedisConnection(serviceUrls.redis, 'worker')
const tmp = mkdtempSync(join(tmpdir(), 'iotflow-traces-'))
let db: Awaited<ReturnType<typeof createTestDatabase>>
let influx: Awaited<ReturnType<typeof createTestInfluxDatabase>>
let receiver: OtlpReceiver
const running: AppProcess[] = []

beforeAll(async () => {
  ;[db, influx, receiver] = await Promise.all([
    createTestDatabase(),
    createTestInfluxDatabase(),
    startOtlpReceiver(),
  ])
})

afterAll(async () => {
  await Promise.all(running.map((app) => app.stop('SIGKILL')))
  for (const prefix of queuePrefixes) await deleteKeys(redis, `${bullPrefix(prefix)}:*`)
  await redis.quit()
  await receiver?.close()
  await influx?.drop()
  await db?.drop()
  rmSync(tmp, { recursive: true, force: true })
})

function newQueuePrefix() {
  const prefix = uniqueName('traces')
  queuePrefixes.push(prefix)
  return prefix
}

const baseEnv = (queuePrefix: string) => ({
  REDIS_URL: serviceUrls.redis,
  DATABASE_URL: db.url,
  QUEUE_PREFIX: queuePrefix,
  ADMIN_TOKEN,
  MIGRATE_ON_START: 'false',
  INFLUX_API: 'v1',
  INFLUX_URL: serviceUrls.influx,
  INFLUX_DATABASE: influx.database,
  WRITER_LINGER_MS: '10',
  OTEL_BSP_SCHEDULE_DELAY: '100',
  OTEL_EXPORTER_OTLP_ENDPOINT: '',
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
})

/** Starts the apps with `env` (the gateway recording the modules it loads) and waits until each is ready. */
async function startApps(names: AppName[], env: Record<string, string>, moduleLog: string) {
  const apps: AppProcess[] = []
  let gatewayUrl = ''
  for (const name of names) {
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    if (name === 'gateway') gatewayUrl = url
    const app =
      name === 'gateway'
        ? spawnApp(name, { ...env, PORT: String(port), MODULE_LOAD_LOG: moduleLog }, [
            '--import',
            recordModuleLoads,
          ])
        : spawnApp(name, { ...env, HEALTH_PORT: String(port) })
    running.push(app)
    apps.push(app)
    await waitFor(
      async () => {
        if (!app.running()) throw new Error(`${name} exited:\n${app.output()}`)
        return (await fetch(`${url}/health/ready`).catch(() => undefined))?.ok === true
      },
      { timeoutMs: 60_000, intervalMs: 200, what: `${name} to be ready` },
    )
  }
  return { apps, gatewayUrl }
}

async function send(gatewayUrl: string, apiKey: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${gatewayUrl}/api/v1/telemetry`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': apiKey, ...headers },
    body: JSON.stringify(body),
  })
  expect(response.status).toBe(202)
  return ((await response.json()) as { batch_id: string }).batch_id
}

const loadedModules = (file: string) => readFileSync(file, 'utf8')
const sdkModules = /@opentelemetry\/(sdk-trace|exporter-trace|resources|otlp-)/

it('one trace follows a request (HTTP or MQTT): its span, enqueue, and each writer batch write linked to it, with its store call', async () => {
  const moduleLog = join(tmp, 'on.log')
  const queuePrefix = newQueuePrefix()
  const mqtt = bridgeEnv({ databaseUrl: db.url, queuePrefix })
  const { apps, gatewayUrl } = await startApps(
    ['gateway', 'writer-postgres', 'writer-influx', 'mqtt-bridge'],
    {
      ...mqtt,
      ...baseEnv(queuePrefix),
      LOG_LEVEL: 'warn',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    },
    moduleLog,
  )
  const device = await registerDeviceOverHttp(gatewayUrl, ADMIN_TOKEN, uniqueName('traced'))
  const t = Date.UTC(2026, 10, 20)
  const first = await send(gatewayUrl, device.apiKey, {
    points: [
      { timestamp: t, data: { a: 1 } },
      { timestamp: t + 1, data: { a: 2 } },
    ],
  })
  const second = await send(gatewayUrl, device.apiKey, { timestamp: t + 2, data: { a: 3 } })
  // A caller's own trace: the gateway continues it.
  const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736'
  const callerSpan = '00f067aa0ba902b7'
  const third = await send(
    gatewayUrl,
    device.apiKey,
    { timestamp: t + 3, data: { a: 4 } },
    {
      traceparent: `00-${callerTrace}-${callerSpan}-01`,
    },
  )

  const byName = (service: string, name: string) =>
    receiver.spans.filter((span) => span.service === service && span.name === name)
  const linkedTo = (service: string, traceId: string, batchId: string) =>
    receiver.spans.find(
      (span) =>
        span.service === service &&
        span.links.some(
          (link) => link.traceId === traceId && link.attributes['iotflow.batch.id'] === batchId,
        ),
    )

  for (const batchId of [first, second, third]) {
    const traced = await waitFor(
      () => {
        const request = byName('iotflow-gateway', 'POST /api/v1/telemetry').find(
          (span) => span.attributes['iotflow.batch.id'] === batchId,
        )
        if (!request) return false
        const postgres = linkedTo('iotflow-writer-postgres', request.traceId, batchId)
        const influxdb = linkedTo('iotflow-writer-influx', request.traceId, batchId)
        return postgres && influxdb && { request, postgres, influxdb }
      },
      { timeoutMs: 20_000, what: `the spans of batch ${batchId}` },
    )
    const { request, postgres, influxdb } = traced
    expect(request.attributes).toMatchObject({
      'iotflow.device.id': device.id,
      'http.request.method': 'POST',
      'http.response.status_code': 202,
    })
    expect(request.attributes['iotflow.points']).toBe(batchId === first ? 2 : 1)
    const enqueue = byName('iotflow-gateway', 'enqueue').find((span) => span.parentSpanId === request.spanId)
    expect(enqueue).toMatchObject({ traceId: request.traceId, attributes: { 'iotflow.batch.id': batchId } })
    for (const [batch, store] of [
      [postgres, 'postgres insert'],
      [influxdb, 'influxdb write'],
    ] as [ReceivedSpan, string][]) {
      expect(batch.name).toMatch(/^write store-(postgres|influx) batch$/)
      expect(batch.attributes['iotflow.batch.ids']).toBeDefined()
      const link = batch.links.find((l) => l.attributes['iotflow.batch.id'] === batchId)
      // The link names the request's enqueue span, its device and its points.
      expect(link).toMatchObject({
        spanId: enqueue?.spanId,
        attributes: { 'iotflow.device.id': device.id, 'iotflow.points': batchId === first ? 2 : 1 },
      })
      const call = receiver.spans.find((span) => span.name === store && span.parentSpanId === batch.spanId)
      expect(call, `${store} under ${batch.name}`).toMatchObject({ traceId: batch.traceId })
      if (store === 'postgres insert') {
        // The request's points are of one UTC day: its partition is among those the call wrote.
        expect(call?.attributes['iotflow.partitions']).toContain(telemetryPartitionOf(t))
      }
    }
    if (batchId === third) expect(request).toMatchObject({ traceId: callerTrace, parentSpanId: callerSpan })
  }

  // The MQTT path: the bridge's message span, its enqueue, and the same links from both writers.
  const message = { api_key: device.apiKey, timestamp: t + 10, data: { a: 5 } }
  const topic = `${mqtt.MQTT_TOPIC_ROOT}/devices/${device.id}/telemetry`
  expect(
    (
      await mosquittoPub([
        ...brokerArgs(sharedBrokerUrl),
        '-q',
        '1',
        '-t',
        topic,
        '-m',
        JSON.stringify(message),
      ])
    ).code,
  ).toBe(0)
  const viaMqtt = await waitFor(
    () => {
      const span = byName('iotflow-mqtt-bridge', 'mqtt message').find(
        (candidate) => candidate.attributes['iotflow.device.id'] === device.id,
      )
      const batchId = span?.attributes['iotflow.batch.id'] as string | undefined
      if (!span || !batchId) return false
      const linked = ['iotflow-writer-postgres', 'iotflow-writer-influx'].every((service) =>
        linkedTo(service, span.traceId, batchId),
      )
      return linked && span
    },
    { timeoutMs: 20_000, what: 'the spans of the MQTT message' },
  )
  expect(viaMqtt.attributes).toMatchObject({ 'messaging.destination.name': topic, 'iotflow.points': 1 })
  expect(byName('iotflow-mqtt-bridge', 'enqueue').some((span) => span.parentSpanId === viaMqtt.spanId)).toBe(
    true,
  )

  expect(loadedModules(moduleLog)).toMatch(sdkModules)

  // Shutdown flushes: every app stops cleanly, with its last spans sent.
  const exits = await Promise.all(apps.map((app) => app.stop('SIGTERM')))
  for (const exit of exits) expect(exit).toEqual({ code: 0, signal: null })
}, 120_000)

it('with OTEL_EXPORTER_OTLP_ENDPOINT unset, nothing is sent, no SDK module is loaded and the job carries no trace context', async () => {
  const moduleLog = join(tmp, 'off.log')
  const queuePrefix = newQueuePrefix()
  const { apps, gatewayUrl } = await startApps(['gateway'], baseEnv(queuePrefix), moduleLog)
  const exportsBefore = receiver.exports.length
  const device = await registerDeviceOverHttp(gatewayUrl, ADMIN_TOKEN, uniqueName('untraced'))
  const batchId = await send(gatewayUrl, device.apiKey, { timestamp: Date.UTC(2026, 10, 21), data: { a: 1 } })
  await new Promise((resolve) => setTimeout(resolve, 500)) // five export intervals
  await apps[0]?.stop('SIGTERM')
  expect(receiver.exports.length).toBe(exportsBefore)

  const loaded = loadedModules(moduleLog)
  expect(loaded).toMatch(/@opentelemetry\/api/) // the recorder sees third-party modules
  expect(loaded).not.toMatch(sdkModules)

  const { name } = queueCatalog.storePostgres
  const ids = await redis.lrange(`${bullPrefix(queuePrefix)}:${name}:wait`, 0, -1)
  const jobs = await Promise.all(
    ids.map((id) => redis.hget(`${bullPrefix(queuePrefix)}:${name}:${id}`, 'data')),
  )
  const job = jobs.find((data) => data?.includes(batchId))
  expect(job).toBeDefined()
  expect(job).not.toContain('traceparent')
}, 60_000)

it('OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf exports protobuf', async () => {
  const { apps, gatewayUrl } = await startApps(
    ['gateway'],
    {
      ...baseEnv(newQueuePrefix()),
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    },
    join(tmp, 'protobuf.log'),
  )
  const device = await registerDeviceOverHttp(gatewayUrl, ADMIN_TOKEN, uniqueName('protobuf'))
  const batchId = await send(gatewayUrl, device.apiKey, { timestamp: Date.UTC(2026, 10, 22), data: { a: 1 } })
  // A protobuf string is its UTF-8 bytes: the batch id attribute appears as it is.
  await waitFor(
    () =>
      receiver.exports.some(
        (e) => e.contentType === 'application/x-protobuf' && e.body.includes(Buffer.from(batchId)),
      ),
    { timeoutMs: 10_000, what: 'a protobuf export holding the batch id' },
  )
  await apps[0]?.stop('SIGTERM')
}, 60_000)
