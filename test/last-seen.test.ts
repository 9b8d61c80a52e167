import { waitFor } from '@iotflow/testkit'
import mqtt from 'mqtt'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { MqttBridge } from '../apps/mqtt-bridge/src/bridge.js'
import { usePipelineFixture } from './support/fixture.js'
import { bridgeEnv, sharedBrokerUrl, startBridge } from './support/mqtt.js'
import { ADMIN_TOKEN } from './support/pipeline.js'

/**
 * `last_seen` of devices that never call the gateway themselves: over MQTT (the bridge) and behind an
 * edge gateway (the bulk route). Read where nothing else touches it: the admin's view of the device.
 */
const flush = { LAST_SEEN_FLUSH_MS: '100' }
const fixture = usePipelineFixture({ writers: false, env: flush })
const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }
let bridge: MqttBridge
let root: string

beforeAll(async () => {
  const env = bridgeEnv({ databaseUrl: fixture.db.url, queuePrefix: fixture.pipeline.queuePrefix }, flush)
  root = env.MQTT_TOPIC_ROOT as string
  bridge = await startBridge(env)
})
afterAll(() => bridge?.close())

async function adminView(deviceId: number) {
  const response = await fetch(`${fixture.pipeline.baseUrl}/api/v1/devices/${deviceId}`, { headers: admin })
  return ((await response.json()) as { device: { last_seen: string | null } }).device
}

/** Waits for the device's stored last_seen to be at or after `since`, and returns it. */
const seenSince = (deviceId: number, since: number) =>
  waitFor(
    async () => {
      const { last_seen } = await adminView(deviceId)
      return last_seen !== null && Date.parse(last_seen) >= since ? last_seen : undefined
    },
    { what: `device ${deviceId} to be seen` },
  )

async function statusOf(apiKey: string) {
  const response = await fetch(`${fixture.pipeline.baseUrl}/api/v1/devices/status`, {
    headers: { 'x-api-key': apiKey },
  })
  return ((await response.json()) as { device: { is_online: boolean; last_seen: string } }).device
}

it('keeps last_seen of a device that only sends over MQTT, and shows it online', async () => {
  const device = await fixture.pipeline.registerDevice()
  expect((await adminView(device.id)).last_seen).toBeNull()
  const since = Date.now() - 1000 // the bridge's clock is this process's: a second of slack is plenty
  const client = await mqtt.connectAsync(sharedBrokerUrl, { protocolVersion: 5 })
  try {
    await client.publishAsync(
      `${root}/devices/${device.id}/telemetry`,
      JSON.stringify({ api_key: device.apiKey, data: { v: 1 } }),
      { qos: 1 },
    )
  } finally {
    await client.endAsync()
  }
  const lastSeen = await seenSince(device.id, since)
  const status = await statusOf(device.apiKey)
  expect(status.is_online).toBe(true)
  expect(Date.parse(status.last_seen)).toBeGreaterThanOrEqual(Date.parse(lastSeen))
})

it('keeps last_seen of the devices behind an edge gateway (bulk route), and shows them online', async () => {
  const [a, b, quiet] = await Promise.all([
    fixture.pipeline.registerDevice(),
    fixture.pipeline.registerDevice(),
    fixture.pipeline.registerDevice(),
  ])
  const created = await fetch(`${fixture.pipeline.baseUrl}/api/v1/gateways`, {
    method: 'POST',
    headers: admin,
    body: JSON.stringify({ name: `site-${a.id}`, device_ids: [a.id, b.id, quiet.id] }),
  })
  const key = ((await created.json()) as { api_key: string }).api_key
  const since = Date.now() - 1000
  const bulk = await fetch(`${fixture.pipeline.baseUrl}/api/v1/telemetry/bulk`, {
    method: 'POST',
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    body: JSON.stringify({
      points: [
        { device_id: a.id, data: { v: 1 } },
        { device_id: b.id, data: { v: 2 } },
      ],
    }),
  })
  expect(bulk.status).toBe(202)
  await seenSince(a.id, since)
  await seenSince(b.id, since)
  expect((await adminView(quiet.id)).last_seen).toBeNull() // named by the gateway, but it sent nothing
  expect((await statusOf(a.apiKey)).is_online).toBe(true)
})
