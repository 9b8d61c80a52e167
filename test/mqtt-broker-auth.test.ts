import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startPrivateMosquitto, uniqueName, waitFor } from '@iotflow/testkit'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { MqttBridge } from '../apps/mqtt-bridge/src/bridge.js'
import { usePipelineFixture } from './support/fixture.js'
import {
  bridgeEnv,
  bridgeSeries,
  brokerArgs,
  mosquittoPub,
  openErrorInbox,
  startBridge,
} from './support/mqtt.js'

/**
 * Devices authenticate at the broker (username = device id, password = API key) with the shipped
 * ACL (infra/mosquitto/acl.conf), and the bridge trusts the broker (MQTT_AUTH_MODE=broker): no
 * api_key in the payload, and a device still cannot publish as another.
 */
const fixture = usePipelineFixture()
const ROOT_DIR = join(import.meta.dirname, '..')
const BRIDGE_PASSWORD = 'bridge-secret-0123456789'
const GHOST = { id: 999_999, apiKey: 'iot_ghost-key' }
let broker: Awaited<ReturnType<typeof startPrivateMosquitto>>
let bridge: MqttBridge
let passwordDir: string
let alice: { id: number; apiKey: string }
let bob: { id: number; apiKey: string }

beforeAll(async () => {
  alice = await fixture.pipeline.registerDevice()
  bob = await fixture.pipeline.registerDevice()
  passwordDir = await mkdtemp(join(tmpdir(), 'iotflow-passwd-'))
  const passwordFile = join(passwordDir, 'passwd')
  const addDevice = (user: string, password: string) =>
    promisify(execFile)('bash', [
      join(ROOT_DIR, 'infra/mosquitto/add-device.sh'),
      passwordFile,
      user,
      password,
    ])
  await addDevice('iotflow-bridge', BRIDGE_PASSWORD)
  await addDevice(String(alice.id), alice.apiKey)
  await addDevice(String(bob.id), bob.apiKey)
  await addDevice(String(GHOST.id), GHOST.apiKey) // a broker login of a device the registry does not know

  broker = await startPrivateMosquitto({
    config: () => [
      'allow_anonymous false',
      `password_file ${passwordFile}`,
      `acl_file ${join(ROOT_DIR, 'infra/mosquitto/acl.conf')}`,
    ],
  })
  bridge = await startBridge(
    bridgeEnv(
      { databaseUrl: fixture.db.url, queuePrefix: fixture.pipeline.queuePrefix },
      {
        MQTT_URL: broker.url,
        MQTT_TOPIC_ROOT: 'iotflow',
        MQTT_AUTH_MODE: 'broker',
        MQTT_USERNAME: 'iotflow-bridge',
        MQTT_PASSWORD: BRIDGE_PASSWORD,
        MQTT_CLIENT_ID: uniqueName('bridge'),
      },
    ),
  )
})

afterAll(async () => {
  await bridge?.close()
  await broker?.dispose()
  if (passwordDir) await rm(passwordDir, { recursive: true, force: true })
})

const as = (device: { id: number; apiKey: string }) => [
  '-V',
  'mqttv5',
  '-u',
  String(device.id),
  '-P',
  device.apiKey,
]
const pub = (device: { id: number; apiKey: string }, topic: string, message: string) =>
  mosquittoPub([...brokerArgs(broker.url), ...as(device), '-q', '1', '-t', topic, '-m', message])

const rowsOf = (deviceId: number) =>
  fixture.db.sql<{ data: Record<string, number> }[]>`
    SELECT data FROM telemetry WHERE device_id = ${deviceId} ORDER BY time`

it('stores what a device publishes under its own topic, without an api_key', async () => {
  const result = await pub(alice, `iotflow/devices/${alice.id}/telemetry`, '{"data": {"v": 1}}')
  expect(result.code).toBe(0)
  await waitFor(async () => (await rowsOf(alice.id)).length === 1, { what: "alice's point" })
  expect((await rowsOf(alice.id)).map((r) => r.data.v)).toEqual([1])
})

it("lets no device publish under another device's topic (the ACL drops it at the broker)", async () => {
  await pub(alice, `iotflow/devices/${bob.id}/telemetry`, '{"timestamp": 1800000000, "data": {"v": 666}}')
  // Then a message of bob's own: once it is stored, alice's would have been too, had it passed.
  expect((await pub(bob, `iotflow/devices/${bob.id}/telemetry`, '{"data": {"v": 2}}')).code).toBe(0)
  await waitFor(async () => (await rowsOf(bob.id)).length >= 1, { what: "bob's point" })
  await fixture.pipeline.drained()
  expect((await rowsOf(bob.id)).map((r) => r.data.v)).toEqual([2])
})

it('refuses a wrong password and an anonymous client at the broker', async () => {
  const wrong = await pub(
    { id: alice.id, apiKey: 'iot_not-her-key' },
    `iotflow/devices/${alice.id}/telemetry`,
    '{}',
  )
  expect(wrong.code).not.toBe(0)
  expect(wrong.stderr).toMatch(/not authori[sz]ed|bad user name or password/i)
  const anonymous = await mosquittoPub([...brokerArgs(broker.url), '-q', '1', '-t', 'iotflow/x', '-m', '{}'])
  expect(anonymous.code).not.toBe(0)
})

it("answers a refused message on the device's errors topic, which only that device may read", async () => {
  const inbox = await openErrorInbox(broker.url, 'iotflow', {
    username: String(alice.id),
    password: alice.apiKey,
  })
  try {
    await pub(alice, `iotflow/devices/${alice.id}/telemetry`, '{"data": {"v": "not a number any more"}}')
    const answer = await inbox.next(`iotflow/devices/${alice.id}/errors`)
    expect(answer.body).toMatchObject({ statusCode: 400, errors: [{ path: 'data.v' }] })
    // alice subscribed to every device's errors, but the ACL lets only her own through.
    await pub(bob, `iotflow/devices/${bob.id}/telemetry`, 'not json')
    await waitFor(
      async () =>
        (await bridgeSeries(bridge, 'iotflow_mqtt_messages_refused_total', { status: '400' })) === 2,
      { what: "bob's refusal" },
    )
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(inbox.answers.map((a) => a.topic)).toEqual([`iotflow/devices/${alice.id}/errors`])
  } finally {
    await inbox.close()
  }
})

it('refuses a device the broker let in but the registry does not know (401), storing nothing', async () => {
  const inbox = await openErrorInbox(broker.url, 'iotflow', {
    username: String(GHOST.id),
    password: GHOST.apiKey,
  })
  try {
    expect((await pub(GHOST, `iotflow/devices/${GHOST.id}/telemetry`, '{"data": {"v": 1}}')).code).toBe(0)
    const answer = await inbox.next(`iotflow/devices/${GHOST.id}/errors`)
    expect(answer.body).toEqual({
      statusCode: 401,
      error: 'Unauthorized',
      message: `unknown device ${GHOST.id}`,
    })
    await fixture.pipeline.drained()
    expect(await rowsOf(GHOST.id)).toEqual([])
  } finally {
    await inbox.close()
  }
})
