import { startPrivateMosquitto, uniqueName, waitFor } from '@iotflow/testkit'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { MqttBridge } from '../apps/mqtt-bridge/src/bridge.js'
import { usePipelineFixture } from './support/fixture.js'
import { bridgeEnv, publishMany, startBridge } from './support/mqtt.js'

/** The broker restarts under the bridge; the bridge shuts down gracefully mid-run and comes back. */
const fixture = usePipelineFixture()
let broker: Awaited<ReturnType<typeof startPrivateMosquitto>>
let bridge: MqttBridge | undefined
let env: Record<string, string>
let device: { id: number; apiKey: string }

beforeAll(async () => {
  broker = await startPrivateMosquitto()
  env = bridgeEnv(
    { databaseUrl: fixture.db.url, queuePrefix: fixture.pipeline.queuePrefix },
    { MQTT_URL: broker.url, MQTT_CLIENT_ID: uniqueName('restarted') },
  )
  device = await fixture.pipeline.registerDevice()
})

afterAll(async () => {
  await bridge?.close()
  await broker?.dispose()
})

const message = (t: number) => ({
  topic: `${env.MQTT_TOPIC_ROOT}/devices/${device.id}/telemetry`,
  payload: JSON.stringify({ api_key: device.apiKey, timestamp: t, data: { seq: t } }),
})
const stored = async () =>
  (
    await fixture.db.sql<
      { n: number }[]
    >`SELECT count(*)::int AS n FROM telemetry WHERE device_id = ${device.id}`
  )[0]?.n ?? 0

it('reconnects by itself when the broker restarts, and reports the broker down meanwhile', async () => {
  bridge = await startBridge(env)
  const T0 = Date.UTC(2026, 10, 25, 0)
  expect((await publishMany(broker.url, 100, (i) => message(T0 + i))).acked).toBe(100)
  await waitFor(async () => (await stored()) === 100, { what: 'the first 100 points' })

  await broker.stop()
  await waitFor(async () => (await bridge?.ready())?.dependencies.broker.status === 'down', {
    what: 'the broker to be seen down',
  })
  await broker.start()
  await waitFor(async () => (await bridge?.ready())?.dependencies.broker.status === 'up', {
    timeoutMs: 20_000,
    what: 'the bridge to reconnect',
  })
  expect((await publishMany(broker.url, 100, (i) => message(T0 + 100 + i))).acked).toBe(100)
  await waitFor(async () => (await stored()) === 200, { what: 'the next 100 points' })
})

it('loses nothing when it shuts down gracefully in the middle of a run and starts again', {
  timeout: 120_000,
}, async () => {
  const T0 = Date.UTC(2026, 10, 25, 1)
  const before = await stored()
  let closed: Promise<void> | undefined
  const { acked } = await publishMany(broker.url, 3_000, (i) => message(T0 + i), {
    window: 20,
    onAck: (count) => {
      if (count === 500) closed = bridge?.close()
    },
  })
  await closed
  expect(acked).toBe(3_000)
  expect((await stored()) - before).toBeLessThan(3_000) // it stopped before the end of the run
  bridge = await startBridge(env)
  await waitFor(async () => (await stored()) - before === 3_000, {
    timeoutMs: 60_000,
    intervalMs: 250,
    what: 'every point of the run',
  })
})
