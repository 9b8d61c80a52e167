import { Writable } from 'node:stream'
import { loadMqttBridgeConfig } from '@iotflow/config'
import { exposition } from '@iotflow/metrics'
import { createLogger } from '@iotflow/runtime'
import {
  createTestDatabase,
  ScrapedMetrics,
  startPrivateMosquitto,
  uniqueName,
  waitFor,
} from '@iotflow/testkit'
import mqtt from 'mqtt'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type MqttBridge, startMqttBridge } from '../apps/mqtt-bridge/src/bridge.js'
import { BROKER_DROPPED_TOPIC } from '../apps/mqtt-bridge/src/broker-drop-watch.js'
import { bridgeEnv, publishMany } from './support/mqtt.js'

/**
 * A private Mosquitto that keeps at most 5 QoS 1 messages for an offline persistent session and
 * publishes $SYS every second: messages it acknowledged to a publisher and then dropped show up in
 * the bridge's iotflow_mqtt_broker_dropped_messages, equal to the broker's own counter, with a warning.
 */
let broker: Awaited<ReturnType<typeof startPrivateMosquitto>>
let db: Awaited<ReturnType<typeof createTestDatabase>>
let bridge: MqttBridge | undefined
const logLines: { level: number; msg: string; dropped?: number }[] = []

beforeAll(async () => {
  broker = await startPrivateMosquitto({
    config: () => ['allow_anonymous true', 'sys_interval 1', 'max_queued_messages 5'],
  })
  db = await createTestDatabase()
})

afterAll(async () => {
  await bridge?.close()
  await broker?.dispose()
  await db?.drop()
})

/** The broker's own count, read the way an operator would: a subscription to its $SYS topic. */
async function brokerCount(): Promise<number> {
  const client = await mqtt.connectAsync(broker.url)
  try {
    const value = new Promise<number>((resolve) =>
      client.on('message', (_topic, payload) => resolve(Number(payload.toString()))),
    )
    await client.subscribeAsync(BROKER_DROPPED_TOPIC)
    return await value
  } finally {
    await client.endAsync()
  }
}

async function bridgeGauge(): Promise<number | undefined> {
  const metrics = new ScrapedMetrics((await exposition((bridge as MqttBridge).metrics.registry)).body)
  const name = 'iotflow_mqtt_broker_dropped_messages'
  return metrics.has(name) ? metrics.value(name) : undefined
}

it('exports the broker drop counter as a metric that follows $SYS, and warns when it rises', {
  timeout: 60_000,
}, async () => {
  const capture = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(JSON.parse(chunk.toString()))
      done()
    },
  })
  const env = bridgeEnv({ databaseUrl: db.url, queuePrefix: uniqueName('drops') }, { MQTT_URL: broker.url })
  bridge = await startMqttBridge(loadMqttBridgeConfig(env), createLogger('mqtt-bridge', 'warn', capture))
  await waitFor(async () => (await bridgeGauge()) === 0, { what: 'the drop gauge at 0 before any drop' })
  expect(logLines.filter((l) => l.dropped !== undefined)).toEqual([])

  // A persistent QoS 1 subscriber that goes away: the broker queues 5 messages for it, drops the rest.
  const topic = `${uniqueName('slow')}/readings`
  const subscriber = await mqtt.connectAsync(broker.url, {
    clientId: uniqueName('offline'),
    clean: false,
    protocolVersion: 5,
    properties: { sessionExpiryInterval: 600 },
  })
  await subscriber.subscribeAsync(topic, { qos: 1 })
  await subscriber.endAsync()
  const { acked } = await publishMany(broker.url, 50, (i) => ({ topic, payload: String(i) }), { window: 5 })
  expect(acked).toBe(50) // every one acknowledged to the publisher

  await waitFor(async () => ((await bridgeGauge()) ?? 0) >= 45, {
    timeoutMs: 15_000,
    what: 'the bridge gauge to show the drops',
  })
  const [broker$SYS, gauge] = [await brokerCount(), await bridgeGauge()]
  expect(broker$SYS).toBe(45)
  expect(gauge).toBe(broker$SYS)
  expect(logLines).toContainEqual(
    expect.objectContaining({ level: 40, dropped: 45, msg: expect.stringContaining('DROPPED MESSAGES') }),
  )
})
