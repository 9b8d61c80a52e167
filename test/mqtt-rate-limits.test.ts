import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startPrivateMosquitto, uniqueName, waitFor } from '@iotflow/testkit'
import mqtt from 'mqtt'
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
 * The per-device rate limit over MQTT, through a private Mosquitto that logs every packet: a message
 * over the limit is answered on the device's errors topic (MQTT 5 and 3.1.1 devices alike), the
 * bridge's PUBACK of it carries reason 0x97 (quota exceeded), and nothing of it is stored.
 */
const limits = { DEVICE_RATE_POINTS_PER_SECOND: '0.01', DEVICE_RATE_BURST_POINTS: '3' }
const fixture = usePipelineFixture({ writers: true, env: limits })
const ROOT = 'iotflow'
let broker: Awaited<ReturnType<typeof startPrivateMosquitto>>
let brokerLog: string
let bridge: MqttBridge
const bridgeClientId = uniqueName('bridge')

beforeAll(async () => {
  broker = await startPrivateMosquitto({
    config: (dir) => {
      brokerLog = join(dir, 'mosquitto.log')
      return ['allow_anonymous true', `log_dest file ${brokerLog}`, 'log_type all']
    },
  })
  bridge = await startBridge(
    bridgeEnv(
      { databaseUrl: fixture.db.url, queuePrefix: fixture.pipeline.queuePrefix },
      { ...limits, MQTT_URL: broker.url, MQTT_TOPIC_ROOT: ROOT, MQTT_CLIENT_ID: bridgeClientId },
    ),
  )
})

afterAll(async () => {
  await bridge?.close()
  await broker?.dispose()
})

let nextTime = Date.UTC(2026, 10, 29, 9)
const message = (apiKey: string, count: number) =>
  JSON.stringify({
    api_key: apiKey,
    points: Array.from({ length: count }, () => ({ timestamp: nextTime++, data: { v: 1 } })),
  })

/** The bridge handles messages concurrently: the next is sent once the first is surely counted. */
const firstStored = (deviceId: number) =>
  waitFor(
    async () => (await fixture.db.sql`SELECT 1 FROM telemetry WHERE device_id = ${deviceId}`).length > 0,
    { what: 'the first message to be stored' },
  )

async function storedPoints(deviceId: number) {
  await fixture.pipeline.drained()
  const [row] = await fixture.db.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM telemetry WHERE device_id = ${deviceId}`
  expect((await fixture.influx.rowsOf(deviceId)).length).toBe(row?.n)
  return row?.n
}

it('answers an MQTT 5 device over its limit on its errors topic (with its correlation data), PUBACKs it with 0x97 and stores nothing of it', async () => {
  const device = await fixture.pipeline.registerDevice()
  const inbox = await openErrorInbox(broker.url, ROOT)
  const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5 })
  try {
    const topic = `${ROOT}/devices/${device.id}/telemetry`
    await client.publishAsync(topic, message(device.apiKey, 3), { qos: 1 })
    await firstStored(device.id)
    await client.publishAsync(topic, message(device.apiKey, 2), {
      qos: 1,
      properties: { correlationData: Buffer.from('second') },
    })
    const answer = await inbox.next(`${ROOT}/devices/${device.id}/errors`)
    expect(answer.correlation).toBe('second')
    expect(answer.body).toMatchObject({
      statusCode: 429,
      error: 'Too Many Requests',
      message: expect.stringMatching(/rate limit; nothing was queued, retry in \d+ s$/),
    })
    // MQTT acknowledgements are hop by hop: the bridge's PUBACK goes to the broker, which logs it.
    const bridgePubacks = new RegExp(
      `Received PUBACK from ${bridgeClientId}-\\d+ \\(Mid: \\d+, RC:(\\d+)\\)`,
      'g',
    )
    const reasonCodes = await waitFor(
      async () => {
        const codes = [...(await readFile(brokerLog, 'utf8')).matchAll(bridgePubacks)].map((m) =>
          Number(m[1]),
        )
        return codes.length >= 2 ? codes : undefined
      },
      { what: "the bridge's PUBACKs in the broker's log" },
    )
    expect(reasonCodes.sort((a, b) => a - b)).toEqual([0, 0x97])
    expect(await storedPoints(device.id)).toBe(3)
  } finally {
    await client.endAsync()
    await inbox.close()
  }
})

it('answers an MQTT 3.1.1 device (mosquitto_pub) over its limit on its errors topic', async () => {
  const device = await fixture.pipeline.registerDevice()
  const inbox = await openErrorInbox(broker.url, ROOT, { protocolVersion: 4 })
  try {
    const topic = `${ROOT}/devices/${device.id}/telemetry`
    const publish = (count: number) =>
      mosquittoPub([
        ...brokerArgs(broker.url),
        ...['-V', 'mqttv311', '-q', '1', '-t', topic, '-m', message(device.apiKey, count)],
      ])
    expect((await publish(3)).code).toBe(0)
    await firstStored(device.id)
    expect((await publish(1)).code).toBe(0)
    const answer = await inbox.next(`${ROOT}/devices/${device.id}/errors`)
    expect(answer.body).toMatchObject({ statusCode: 429, error: 'Too Many Requests' })
    expect(await storedPoints(device.id)).toBe(3)
    expect(await bridgeSeries(bridge, 'iotflow_mqtt_messages_refused_total', { status: '429' })).toBe(2)
  } finally {
    await inbox.close()
  }
})
