import { waitFor } from '@iotflow/testkit'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { MqttBridge } from '../apps/mqtt-bridge/src/bridge.js'
import { usePipelineFixture } from './support/fixture.js'
import { bodyBytes, refused, seedBody } from './support/hostile-cases.js'
import { bridgeEnv, bridgeSeries, openErrorInbox, sharedBrokerUrl, startBridge } from './support/mqtt.js'

/**
 * HTTP and MQTT share one ingest path, so every hostile payload gets the same verdict over both:
 * the same status and the same error paths. The bridge trusts the broker here (MQTT_AUTH_MODE=broker),
 * so that the payloads travel unchanged, without an api_key.
 */
const fixture = usePipelineFixture()
let bridge: MqttBridge
let inbox: Awaited<ReturnType<typeof openErrorInbox>>
let publisher: MqttClient
let root: string

beforeAll(async () => {
  const env = bridgeEnv(
    { databaseUrl: fixture.db.url, queuePrefix: fixture.pipeline.queuePrefix },
    { MQTT_AUTH_MODE: 'broker' },
  )
  root = env.MQTT_TOPIC_ROOT as string
  bridge = await startBridge(env)
  inbox = await openErrorInbox(sharedBrokerUrl, root)
  publisher = await mqtt.connectAsync(sharedBrokerUrl, { protocolVersion: 5 })
})

afterAll(async () => {
  await publisher?.endAsync()
  await inbox?.close()
  await bridge?.close()
})

// A content type is an HTTP notion: MQTT payloads are always read as JSON.
const cases = refused.filter((c) => c.contentType === undefined)

it('gives every hostile payload the same status and error paths over HTTP and MQTT, and stores none', async () => {
  const seeder = await fixture.pipeline.registerDevice('seeder')
  expect((await fixture.pipeline.send(seeder.apiKey, seedBody)).status).toBe(202)
  const device = await fixture.pipeline.registerDevice('hostile')

  const overHttp = []
  for (const c of cases) {
    const response = await fetch(`${fixture.pipeline.baseUrl}/api/v1/telemetry`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': device.apiKey },
      body: bodyBytes(c.body),
    })
    const body = (await response.json()) as { errors?: { path: string }[] }
    overHttp.push({ name: c.name, status: response.status, paths: body.errors?.map((e) => e.path) })
  }

  const topic = `${root}/devices/${device.id}/telemetry`
  await Promise.all(
    cases.map((c, index) =>
      publisher.publishAsync(topic, bodyBytes(c.body), {
        qos: 1,
        properties: { correlationData: Buffer.from(String(index)) },
      }),
    ),
  )
  await waitFor(() => inbox.answers.length >= cases.length, {
    timeoutMs: 20_000,
    what: 'an answer to every case',
  })
  const overMqtt = cases.map((c, index) => {
    const answer = inbox.answers.find((a) => a.correlation === String(index))
    return { name: c.name, status: answer?.body.statusCode, paths: answer?.body.errors?.map((e) => e.path) }
  })

  expect(overMqtt).toEqual(overHttp)
  // And both agree with the table.
  expect(overHttp.map((v) => v.status)).toEqual(cases.map((c) => c.status))
  expect(inbox.answers.every((a) => a.topic === `${root}/devices/${device.id}/errors`)).toBe(true)

  await fixture.pipeline.drained()
  const [pg] = await fixture.db.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM telemetry WHERE device_id = ${device.id}`
  expect(pg?.n).toBe(0)
  expect(await fixture.influx.rowsOf(device.id)).toEqual([])
  expect(await bridgeSeries(bridge, 'iotflow_mqtt_messages_accepted_total')).toBe(0)
})
