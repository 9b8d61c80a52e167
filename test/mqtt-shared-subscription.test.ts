import { startPrivateMosquitto, uniqueName, waitFor } from '@iotflow/testkit'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { MqttBridge } from '../apps/mqtt-bridge/src/bridge.js'
import { usePipelineFixture } from './support/fixture.js'
import { bridgeEnv, bridgeSeries, publishMany, startBridge } from './support/mqtt.js'

/** Two bridges in one share group split the messages: each is handled by exactly one bridge. */
const fixture = usePipelineFixture()
const MESSAGES = 3_000
const T0 = Date.UTC(2026, 10, 27, 0)
let broker: Awaited<ReturnType<typeof startPrivateMosquitto>>
const bridges: MqttBridge[] = []

beforeAll(async () => {
  broker = await startPrivateMosquitto()
})

afterAll(async () => {
  await Promise.all(bridges.map((b) => b.close()))
  await broker?.dispose()
})

it('stores each message once, and both bridges take a share', { timeout: 120_000 }, async () => {
  const shared = bridgeEnv(
    { databaseUrl: fixture.db.url, queuePrefix: fixture.pipeline.queuePrefix },
    { MQTT_URL: broker.url },
  )
  for (const name of ['a', 'b']) {
    bridges.push(await startBridge({ ...shared, MQTT_CLIENT_ID: uniqueName(`bridge-${name}`) }))
  }
  const devices = await Promise.all(Array.from({ length: 3 }, () => fixture.pipeline.registerDevice()))

  const { acked } = await publishMany(broker.url, MESSAGES, (i) => {
    const device = devices[i % devices.length] as { id: number; apiKey: string }
    return {
      topic: `${shared.MQTT_TOPIC_ROOT}/devices/${device.id}/telemetry`,
      payload: JSON.stringify({ api_key: device.apiKey, timestamp: T0 + i, data: { seq: i } }),
    }
  })
  expect(acked).toBe(MESSAGES)

  const acceptedBy = (bridge: MqttBridge) => bridgeSeries(bridge, 'iotflow_mqtt_messages_accepted_total')
  const handled = async () => (await Promise.all(bridges.map(acceptedBy))).reduce((sum, n) => sum + n, 0)
  await waitFor(async () => (await handled()) >= MESSAGES, {
    timeoutMs: 60_000,
    what: 'every message to be handled',
  })
  await fixture.pipeline.drained()
  const [a, b] = (await Promise.all(bridges.map(acceptedBy))) as [number, number]
  expect(a + b).toBe(MESSAGES) // no message went to both
  expect(a).toBeGreaterThan(MESSAGES / 10)
  expect(b).toBeGreaterThan(MESSAGES / 10)

  const rows = await fixture.db.sql<{ seq: number }[]>`SELECT (data->>'seq')::int AS seq FROM telemetry`
  expect(rows.length).toBe(MESSAGES)
  expect(new Set(rows.map((r) => r.seq)).size).toBe(MESSAGES)
})
