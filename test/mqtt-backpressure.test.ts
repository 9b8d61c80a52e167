import { setTimeout as sleep } from 'node:timers/promises'
import { waitFor } from '@iotflow/testkit'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttBridge } from '../apps/mqtt-bridge/src/bridge.js'
import { sendUntilRefused } from './support/backlog.js'
import { usePipelineFixture } from './support/fixture.js'
import { bridgeEnv, bridgeSeries, sharedBrokerUrl, startBridge } from './support/mqtt.js'

/** The gateway and the bridge with a small bound, and no writer until the test starts them. */
const LIMIT = 500
const CONNECTIONS = 4
const fixture = usePipelineFixture({ writers: false, env: { BACKLOG_MAX_POINTS: String(LIMIT) } })
let bridge: MqttBridge
let root: string

beforeAll(async () => {
  const target = { databaseUrl: fixture.db.url, queuePrefix: fixture.pipeline.queuePrefix }
  const env = bridgeEnv(target, { BACKLOG_MAX_POINTS: String(LIMIT), MQTT_CONNECTIONS: String(CONNECTIONS) })
  root = env.MQTT_TOPIC_ROOT as string
  bridge = await startBridge(env)
})

afterAll(() => bridge?.close())

// A day ago, to the second: every point sent stays in the past and within the accepted range.
const T0 = Math.floor(Date.now() / 1000) * 1000 - 86_400_000
const MESSAGES = 10

describe('MQTT backpressure', () => {
  it('holds QoS 1 messages unacknowledged while the backlog is over its limit, then queues and acknowledges each once', async () => {
    const { pipeline } = fixture
    const sender = await pipeline.registerDevice()
    const { acknowledged } = await sendUntilRefused(pipeline, sender.apiKey, T0)
    const over = await waitFor(
      async () => {
        const { backlog } = await bridge.ready()
        return backlog?.state === 'over-limit' && backlog
      },
      { what: 'the bridge to see the backlog over its limit' },
    )

    const device = await pipeline.registerDevice()
    const times = Array.from({ length: MESSAGES }, (_, i) => T0 - (i + 1) * 1000)
    // The device's PUBACKs come from the broker, which now holds the messages for the bridge.
    const client = await mqtt.connectAsync(sharedBrokerUrl, { protocolVersion: 5 })
    for (const timestamp of times) {
      await client.publishAsync(
        `${root}/devices/${device.id}/telemetry`,
        JSON.stringify({ api_key: device.apiKey, timestamp, data: { t: timestamp } }),
        { qos: 1 },
      )
    }
    await client.endAsync()

    await waitFor(
      async () => (await bridgeSeries(bridge, 'iotflow_mqtt_backlog_waits_total')) >= CONNECTIONS,
      {
        what: 'every connection to hold a message',
      },
    )
    await sleep(1500)
    // Held by the bridge: not acknowledged (neither accepted nor refused and answered), not queued
    // (the counters have not moved). Each connection holds one message and reads no further, so
    // the broker keeps the rest.
    expect(await bridgeSeries(bridge, 'iotflow_mqtt_messages_accepted_total')).toBe(0)
    expect(await bridgeSeries(bridge, 'iotflow_mqtt_messages_refused_total')).toBe(0)
    expect((await bridge.ready()).backlog).toEqual(over)
    expect(await bridgeSeries(bridge, 'iotflow_mqtt_messages_received_total')).toBe(CONNECTIONS)

    // The writers start and drain the backlog: every held message is queued, then acknowledged.
    await pipeline.startPostgresWriter()
    await pipeline.startInfluxWriter()
    await waitFor(
      async () => (await bridgeSeries(bridge, 'iotflow_mqtt_messages_accepted_total')) === MESSAGES,
      {
        timeoutMs: 20_000,
        what: 'the bridge to queue every message',
      },
    )
    await pipeline.drained()

    // Each message stored once in both stores, and every point the gateway acknowledged too.
    const rows = await fixture.db.sql<{ device_id: number; n: number }[]>`
      SELECT device_id, count(*)::int AS n FROM telemetry GROUP BY device_id ORDER BY device_id`
    expect(rows).toEqual([
      { device_id: sender.id, n: acknowledged.length },
      { device_id: device.id, n: MESSAGES },
    ])
    const influx = await fixture.influx.rowsOf(device.id)
    expect(influx.map((r) => r.time).sort()).toEqual([...times].sort())
    expect((await fixture.influx.rowsOf(sender.id)).length).toBe(acknowledged.length)
    expect(await bridgeSeries(bridge, 'iotflow_mqtt_messages_accepted_total')).toBe(MESSAGES)
    expect(await bridgeSeries(bridge, 'iotflow_mqtt_messages_refused_total')).toBe(0)
  })
})
