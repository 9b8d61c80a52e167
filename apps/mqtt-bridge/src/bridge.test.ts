import { loadMqttBridgeConfig } from '@iotflow/config'
import { createDevicesRepository } from '@iotflow/db'
import { exposition } from '@iotflow/metrics'
import { createLogger } from '@iotflow/runtime'
import {
  createTestDatabase,
  ScrapedMetrics,
  serviceUrls,
  type TestDatabase,
  uniqueName,
  waitFor,
} from '@iotflow/testkit'
import { useTestRedis } from '@iotflow/testkit/use-test-redis'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type MqttBridge, startMqttBridge } from './bridge.js'

/** The bridge in this process, on the shared broker, Redis and PostgreSQL, under a topic root of its own. */
const redis = useTestRedis('bridge')
const root = uniqueName('iotflow')
let db: TestDatabase
let bridge: MqttBridge
let device: MqttClient
const answers: { topic: string; body: { statusCode: number; message: string }; correlation?: string }[] = []

beforeAll(async () => {
  db = await createTestDatabase()
  const config = loadMqttBridgeConfig({
    REDIS_URL: serviceUrls.redis,
    DATABASE_URL: db.url,
    QUEUE_PREFIX: redis.prefix,
    MIGRATE_ON_START: 'false',
    MQTT_URL: serviceUrls.mqtt,
    MQTT_TOPIC_ROOT: root,
    MQTT_SHARE_GROUP: uniqueName('bridges'),
    MQTT_CLIENT_ID: uniqueName('bridge'),
    MQTT_CONNECTIONS: '1',
    MQTT_SESSION_EXPIRY_SECONDS: '60',
  })
  bridge = await startMqttBridge(config, createLogger('mqtt-bridge', 'silent'))
  device = await mqtt.connectAsync(serviceUrls.mqtt, { protocolVersion: 5 })
  device.on('message', (topic, payload, packet) => {
    const correlation = packet.properties?.correlationData?.toString()
    answers.push({ topic, body: JSON.parse(payload.toString()), ...(correlation && { correlation }) })
  })
  await device.subscribeAsync(`${root}/devices/+/errors`, { qos: 1 })
})

afterAll(async () => {
  await device?.endAsync()
  await bridge?.close()
  await db?.drop()
})

/** Publishes at QoS 1 and resolves with the PUBACK's reason code (0: accepted by the broker). */
async function publish(deviceLevel: string | number, payload: string, correlation?: string) {
  const packet = await device.publishAsync(`${root}/devices/${deviceLevel}/telemetry`, payload, {
    qos: 1,
    ...(correlation && { properties: { correlationData: Buffer.from(correlation) } }),
  })
  return (packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0
}

const answerWith = (correlation: string) =>
  waitFor(() => answers.find((a) => a.correlation === correlation), { what: `the answer ${correlation}` })
const series = async (name: string, labels: Record<string, string> = {}) =>
  new ScrapedMetrics((await exposition(bridge.metrics.registry)).body).value(name, labels)
const backlog = async () => (await bridge.ready()).backlog?.points

describe('the MQTT bridge', () => {
  it('refuses a payload that is not JSON: answered with a 400 on the errors topic, nothing queued', async () => {
    const before = await backlog()
    expect(await publish(7, '{"data": {"t": 1}', 'not-json')).toBe(0)
    const answer = await answerWith('not-json')
    expect(answer.topic).toBe(`${root}/devices/7/errors`)
    expect(answer.body).toMatchObject({ statusCode: 400, message: expect.stringMatching(/JSON/i) })
    expect(await series('iotflow_mqtt_messages_refused_total', { status: '400' })).toBe(1)
    expect(await series('iotflow_points_refused_total', { transport: 'mqtt', reason: 'invalid' })).toBe(1)
    expect(await backlog()).toEqual(before)
  })

  it('refuses an unknown API key with a 401 on the errors topic', async () => {
    await publish(7, JSON.stringify({ api_key: 'iot_nobody', data: { t: 1 } }), 'unknown-key')
    expect((await answerWith('unknown-key')).body).toMatchObject({ statusCode: 401 })
  })

  it("queues a registered device's message for both stores before it acknowledges it", async () => {
    const { device: registered, apiKey } = await createDevicesRepository(db.sql).create({ name: 'probe' })
    const points = [1, 2, 3].map((i) => ({ timestamp: Date.UTC(2026, 5, 1, 12, 0, i), data: { level: i } }))
    expect(await publish(registered.id, JSON.stringify({ api_key: apiKey, points }))).toBe(0)
    // That PUBACK is the broker's, on receipt: the bridge handles the message after it. It counts
    // the points once their batch is queued, just before its own acknowledgement to the broker.
    await waitFor(async () => (await series('iotflow_mqtt_points_accepted_total')) > 0, {
      what: 'the bridge to have handled the message',
    })
    expect(await backlog()).toEqual({ 'store-postgres': 3, 'store-influx': 3 })
    expect(await series('iotflow_mqtt_points_accepted_total')).toBe(3)
    expect(await series('iotflow_points_accepted_total', { transport: 'mqtt' })).toBe(3)
    expect(answers.filter((a) => a.topic === `${root}/devices/${registered.id}/errors`)).toEqual([])
  })
})
