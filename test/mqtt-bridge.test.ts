import { exposition } from '@iotflow/metrics'
import { waitFor } from '@iotflow/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttBridge } from '../apps/mqtt-bridge/src/bridge.js'
import { usePipelineFixture } from './support/fixture.js'
import {
  type Answer,
  bridgeEnv,
  brokerArgs,
  mosquittoPub,
  openErrorInbox,
  sharedBrokerUrl,
  startBridge,
} from './support/mqtt.js'
import { ADMIN_TOKEN } from './support/pipeline.js'

/** The bridge against the shared Mosquitto, driven by the real mosquitto_pub client. */
const fixture = usePipelineFixture()
let env: Record<string, string>
let bridge: MqttBridge
let inbox: Awaited<ReturnType<typeof openErrorInbox>>
let root: string

beforeAll(async () => {
  env = bridgeEnv({ databaseUrl: fixture.db.url, queuePrefix: fixture.pipeline.queuePrefix })
  root = env.MQTT_TOPIC_ROOT as string
  bridge = await startBridge(env)
  inbox = await openErrorInbox(sharedBrokerUrl, root)
})

afterAll(async () => {
  await inbox?.close()
  await bridge?.close()
})

const T0 = Date.UTC(2026, 10, 28, 9)
const iso = (ms: number) => new Date(ms).toISOString()

const pub = (topic: string, message: string) =>
  mosquittoPub([...brokerArgs(sharedBrokerUrl), '-q', '1', '-t', topic, '-m', message])

const rowsIn = async (deviceId: number) =>
  fixture.db.sql<{ time: Date; type: string | null; data: Record<string, unknown> }[]>`
    SELECT time, type, data FROM telemetry WHERE device_id = ${deviceId} ORDER BY time`

async function storedIn(deviceId: number, count: number) {
  return waitFor(
    async () => {
      const [pg, influx] = await Promise.all([rowsIn(deviceId), fixture.influx.rowsOf(deviceId)])
      return pg.length >= count && influx.length >= count && { pg, influx }
    },
    { timeoutMs: 15_000, what: `${count} points of device ${deviceId} in both stores` },
  )
}

/** Nothing of the device in either store once the queues are drained. */
async function expectNothingStored(deviceId: number) {
  await fixture.pipeline.drained()
  expect(await rowsIn(deviceId)).toEqual([])
  expect(await fixture.influx.rowsOf(deviceId)).toEqual([])
}

describe('mosquitto_pub -q 1 through the bridge', () => {
  it('stores a single point in both stores', async () => {
    const device = await fixture.pipeline.registerDevice()
    const message = { api_key: device.apiKey, timestamp: iso(T0), data: { temperature: 21.5, door: true } }
    expect((await pub(`${root}/devices/${device.id}/telemetry`, JSON.stringify(message))).code).toBe(0)
    const { pg, influx } = await storedIn(device.id, 1)
    expect(pg.map((r) => [r.time.getTime(), r.type, r.data])).toEqual([
      [T0, null, { temperature: 21.5, door: true }],
    ])
    expect(influx.map((r) => [r.time, r.temperature, r.door])).toEqual([[T0, 21.5, true]])
  })

  it('stores a batch, every point', async () => {
    const device = await fixture.pipeline.registerDevice()
    const points = Array.from({ length: 50 }, (_, i) => ({ timestamp: T0 + i * 1000, data: { level: i } }))
    const message = { api_key: device.apiKey, points }
    expect((await pub(`${root}/devices/${device.id}/telemetry`, JSON.stringify(message))).code).toBe(0)
    const { pg, influx } = await storedIn(device.id, 50)
    expect(pg.map((r) => r.data.level)).toEqual(points.map((p) => p.data.level))
    expect(influx.map((r) => r.level)).toEqual(points.map((p) => p.data.level))
  })

  it('keeps a /sensors sub-topic as the type of the points', async () => {
    const device = await fixture.pipeline.registerDevice()
    const message = {
      api_key: device.apiKey,
      points: [
        { timestamp: T0, data: { lux: 300 } },
        { timestamp: T0 + 1, data: { lux: 310 }, type: 'own' },
      ],
    }
    expect((await pub(`${root}/devices/${device.id}/telemetry/sensors`, JSON.stringify(message))).code).toBe(
      0,
    )
    const { pg, influx } = await storedIn(device.id, 2)
    expect(pg.map((r) => r.type)).toEqual(['sensors', 'own'])
    // Not an InfluxDB tag (docs/telemetry-contract.md, one point per device and time).
    expect(influx.map((r) => r.type)).toEqual([undefined, undefined])
  })
})

describe('refused messages: nothing stored, the reason on the errors topic', () => {
  const refusedCase = async (publishAs: (device: { id: number; apiKey: string }) => [string, string]) => {
    const device = await fixture.pipeline.registerDevice()
    const [topic, message] = publishAs(device)
    expect((await pub(topic, message)).code).toBe(0) // the broker accepted it
    const answer = await inbox.next(topic.replace(/\/telemetry(\/[^/]+)?$/, '/errors'))
    return { device, answer }
  }

  it('a wrong key: 401', async () => {
    const { device, answer } = await refusedCase((d) => [
      `${root}/devices/${d.id}/telemetry`,
      JSON.stringify({ api_key: 'iot_wrong', data: { v: 1 } }),
    ])
    expect(answer.body).toEqual({ statusCode: 401, error: 'Unauthorized', message: 'unknown API key' })
    await expectNothingStored(device.id)
  })

  it('no key at all: 401 naming api_key', async () => {
    const { device, answer } = await refusedCase((d) => [
      `${root}/devices/${d.id}/telemetry`,
      '{"data":{"v":1}}',
    ])
    expect(answer.body).toMatchObject({
      statusCode: 401,
      errors: [{ path: 'api_key', message: 'is missing' }],
    })
    await expectNothingStored(device.id)
  })

  it("another device's topic: 403, and neither device gets the point", async () => {
    const victim = await fixture.pipeline.registerDevice()
    const { device: attacker, answer } = await refusedCase((d) => [
      `${root}/devices/${victim.id}/telemetry`,
      JSON.stringify({ api_key: d.apiKey, data: { v: 1 } }),
    ])
    expect(answer.topic).toBe(`${root}/devices/${victim.id}/errors`)
    expect(answer.body).toMatchObject({ statusCode: 403, error: 'Forbidden' })
    expect(answer.body.message).toContain(`device ${victim.id}`)
    await expectNothingStored(victim.id)
    await expectNothingStored(attacker.id)
  })

  it('malformed JSON: 400 at (body)', async () => {
    const { device, answer } = await refusedCase((d) => [
      `${root}/devices/${d.id}/telemetry`,
      `{"api_key": "${d.apiKey}", "data": {"v": `,
    ])
    expect(answer.body).toMatchObject({ statusCode: 400, error: 'Bad Request', errors: [{ path: '(body)' }] })
    expect(answer.body.message).toMatch(/not valid JSON/)
    await expectNothingStored(device.id)
  })

  it('an invalid point: 400 with its path, like HTTP', async () => {
    const { device, answer } = await refusedCase((d) => [
      `${root}/devices/${d.id}/telemetry`,
      JSON.stringify({
        api_key: d.apiKey,
        points: [{ data: { v: 1 } }, { timestamp: 'soon', data: { v: 2 } }],
      }),
    ])
    expect(answer.body.errors?.map((e) => e.path)).toEqual(['points[1].timestamp'])
    await expectNothingStored(device.id)
  })

  it('a topic level that is not a device id: 400 on that level’s errors topic', async () => {
    const topic = `${root}/devices/not-a-number/telemetry`
    expect((await pub(topic, '{"data":{"v":1}}')).code).toBe(0)
    const answer: Answer = await inbox.next(`${root}/devices/not-a-number/errors`)
    expect(answer.body).toMatchObject({ statusCode: 400, errors: [{ path: '(topic)' }] })
  })

  it('stops an old key within a second of its rotation on a gateway (device-change pub/sub)', async () => {
    const device = await fixture.pipeline.registerDevice()
    const topic = `${root}/devices/${device.id}/telemetry`
    expect(
      (await pub(topic, JSON.stringify({ api_key: device.apiKey, timestamp: T0, data: { v: 1 } }))).code,
    ).toBe(0)
    await storedIn(device.id, 1) // the bridge now holds the key in its cache (30 s TTL)

    const rotated = await fetch(`${fixture.pipeline.baseUrl}/api/v1/devices/${device.id}/rotate-key`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    })
    expect(rotated.status).toBe(200)
    const started = Date.now()
    await pub(topic, JSON.stringify({ api_key: device.apiKey, timestamp: T0 + 1, data: { v: 2 } }))
    const answer = await inbox.next(topic.replace(/\/telemetry$/, '/errors'))
    expect(answer.body).toMatchObject({ statusCode: 401, message: 'unknown API key' })
    expect(Date.now() - started).toBeLessThan(1000)
  })

  it('counts what it refused and accepted, and reports itself ready', async () => {
    const metrics = (await exposition(bridge.metrics.registry)).body
    // The shared series, as the gateway exposes them, with transport="mqtt".
    expect(metrics).toMatch(/iotflow_points_accepted_total\{transport="mqtt"\} 54\n/)
    expect(metrics).toMatch(/iotflow_ingest_messages_total\{transport="mqtt",outcome="unauthenticated"\} 3\n/)
    expect(metrics).toMatch(/iotflow_dependency_up\{dependency="redis"\} 1\n/)
    expect(metrics).toMatch(/iotflow_mqtt_messages_refused_total\{status="401"\} 3\n/)
    expect(metrics).toMatch(/iotflow_mqtt_messages_refused_total\{status="403"\} 1\n/)
    expect(metrics).toMatch(/iotflow_mqtt_messages_refused_total\{status="400"\} 3\n/)
    expect(metrics).toMatch(/iotflow_mqtt_messages_accepted_total 4\n/)
    expect(metrics).toMatch(/iotflow_mqtt_points_accepted_total 54\n/)
    expect(metrics).toMatch(/iotflow_mqtt_handler_failures_total 0\n/)
    expect(metrics).toMatch(/iotflow_mqtt_connections\{state="connected"\} 4\n/)
    expect(await bridge.ready()).toEqual({
      dependencies: { broker: { status: 'up' }, redis: { status: 'up' }, postgres: { status: 'up' } },
      backlog: {
        state: 'ok',
        limit: 1_000_000,
        points: { 'store-postgres': expect.any(Number), 'store-influx': expect.any(Number) },
      },
      redis_durability: expect.objectContaining({ appendonly: expect.any(String) }),
    })
    expect(metrics).toMatch(/iotflow_queue_backlog_limit_points 1000000\n/)
    expect(metrics).toMatch(/iotflow_queue_backlog_points\{queue="store-influx",partition="0"\} \d+\n/)
  })
})
