import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadGatewayConfig } from '@iotflow/config'
import { serviceUrls, startPrivateMosquitto, uniqueName, waitFor } from '@iotflow/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildApp } from '../apps/gateway/src/app.js'
import { usePipelineFixture } from './support/fixture.js'
import { bridgeEnv, mosquittoPub, startBridge } from './support/mqtt.js'
import { ADMIN_TOKEN } from './support/pipeline.js'
import { certs, curl, shippedListenerSettings } from './support/tls.js'

/**
 * TLS on every hop a device uses, with certificates from infra/tls/certs.sh, the shipped Mosquitto
 * configs and the real curl and mosquitto_pub: the right CA works; a wrong CA, an expired
 * certificate and a plain-text client are refused.
 */
const fixture = usePipelineFixture()
let dir: string
let ca: string
let otherCa: string
let alice: { id: number; apiKey: string }
let bob: { id: number; apiKey: string }
const cleanups: (() => Promise<unknown>)[] = []

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'iotflow-tls-'))
  await certs('local', dir)
  await certs('server', dir, 'expired-server', '-1')
  await certs('local', join(dir, 'other'))
  ca = join(dir, 'ca.pem')
  otherCa = join(dir, 'other', 'ca.pem')
  alice = await fixture.pipeline.registerDevice()
  bob = await fixture.pipeline.registerDevice()
  await certs('client', dir, String(alice.id))
  await certs('client', dir, String(bob.id))
  await certs('client', join(dir, 'expired'), String(alice.id), '-1')
  await certs('client', join(dir, 'other'), String(alice.id))
})

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
  if (dir) await rm(dir, { recursive: true, force: true })
})

/** A private broker with a shipped config's TLS listener, and a bridge on it over mqtts://; the broker's port. */
async function brokerAndBridge(shippedConfig: string, bridgeSettings: Record<string, string>) {
  const broker = await startPrivateMosquitto({ config: () => shippedListenerSettings(shippedConfig, dir) })
  cleanups.push(() => broker.dispose())
  const bridge = await startBridge(
    bridgeEnv(
      { databaseUrl: fixture.db.url, queuePrefix: fixture.pipeline.queuePrefix },
      {
        MQTT_URL: `mqtts://127.0.0.1:${broker.port}`,
        MQTT_CA_FILE: ca,
        MQTT_TOPIC_ROOT: 'iotflow',
        MQTT_CLIENT_ID: uniqueName('bridge'),
        ...bridgeSettings,
      },
    ),
  )
  cleanups.push(() => bridge.close())
  return broker.port
}

/** The real mosquitto_pub, QoS 1, to a device's telemetry topic on 127.0.0.1:`port`. */
const publishTo = (port: number, tlsArgs: string[], topicDevice: number, message: object) =>
  mosquittoPub([
    ...['-h', '127.0.0.1', '-p', String(port), ...tlsArgs, '-q', '1'],
    ...['-t', `iotflow/devices/${topicDevice}/telemetry`, '-m', JSON.stringify(message)],
  ])

const valuesOf = async (deviceId: number) =>
  (
    await fixture.db.sql<{ v: number }[]>`
      SELECT (data->>'v')::float AS v FROM telemetry WHERE device_id = ${deviceId} ORDER BY time`
  ).map((row) => row.v)

describe('the gateway over HTTPS', () => {
  async function httpsGateway(certificate: string) {
    const gateway = await buildApp(
      loadGatewayConfig({
        REDIS_URL: serviceUrls.redis,
        DATABASE_URL: fixture.db.url,
        QUEUE_PREFIX: fixture.pipeline.queuePrefix,
        ADMIN_TOKEN,
        MIGRATE_ON_START: 'false',
        TLS_CERT_FILE: join(dir, `${certificate}.pem`),
        TLS_KEY_FILE: join(dir, `${certificate}.key`),
      }),
      { logger: false },
    )
    cleanups.push(() => gateway.close())
    await gateway.listen({ host: '127.0.0.1', port: 0 })
    return (gateway.server.address() as { port: number }).port
  }
  const telemetry = (apiKey: string, v: number, timestamp: number) => [
    '-H',
    `x-api-key: ${apiKey}`,
    '-H',
    'content-type: application/json',
    '-d',
    JSON.stringify({ timestamp, data: { v } }),
  ]

  it('takes telemetry from curl trusting its CA (202, stored), and refuses a wrong CA and plain HTTP', async () => {
    const port = await httpsGateway('server')
    const url = `https://127.0.0.1:${port}/api/v1/telemetry`

    const sent = await curl(url, ['--cacert', ca, ...telemetry(alice.apiKey, 1, 1_790_000_000_000)])
    expect(sent, sent.stderr).toMatchObject({ code: 0, status: 202 })
    // The certificate names localhost too.
    const byName = await curl(`https://localhost:${port}/health`, ['--cacert', ca])
    expect(byName, byName.stderr).toMatchObject({ code: 0, status: 200 })

    const wrongCa = await curl(url, ['--cacert', otherCa, ...telemetry(alice.apiKey, 2, 1_790_000_001_000)])
    expect(wrongCa.code).toBe(60) // "SSL certificate problem": nothing was sent
    expect(wrongCa.status).toBe(0)
    const plain = await curl(
      `http://127.0.0.1:${port}/api/v1/telemetry`,
      telemetry(alice.apiKey, 3, 1_790_000_002_000),
    )
    expect(plain.code).not.toBe(0)
    expect(plain.status).toBe(0)

    await waitFor(async () => (await valuesOf(alice.id)).length > 0, { what: "alice's point over HTTPS" })
    await fixture.pipeline.drained()
    expect(await valuesOf(alice.id)).toEqual([1])
  })

  it('does not start with a key that is not its certificate', async () => {
    const config = loadGatewayConfig({
      ADMIN_TOKEN,
      TLS_CERT_FILE: join(dir, 'server.pem'),
      TLS_KEY_FILE: join(dir, 'iotflow-bridge.key'),
    })
    await expect(buildApp(config, { logger: false })).rejects.toThrow(/TLS_KEY_FILE: cannot serve TLS/)
  })

  it('is refused by curl when its certificate has expired', async () => {
    const port = await httpsGateway('expired-server')
    const result = await curl(`https://127.0.0.1:${port}/health`, ['--cacert', ca])
    expect(result.code).toBe(60)
    expect(result.stderr).toMatch(/expired/i)
  })
})

describe('the broker over TLS (infra/mosquitto/mosquitto-tls.conf), api_key in the payload', () => {
  let port: number

  beforeAll(async () => {
    port = await brokerAndBridge('mosquitto-tls.conf', {})
  })

  const publish = (tlsArgs: string[], v: number, brokerPort = port) =>
    publishTo(brokerPort, tlsArgs, bob.id, { api_key: bob.apiKey, timestamp: 1_790_000_000 + v, data: { v } })

  it('stores what mosquitto_pub sends trusting the CA, through a bridge on mqtts:// with MQTT_CA_FILE', async () => {
    const sent = await publish(['--cafile', ca], 10)
    expect(sent.code, sent.stderr).toBe(0)
    await waitFor(async () => (await valuesOf(bob.id)).includes(10), { what: "bob's point over TLS" })
  })

  it('refuses a client with a wrong CA, and a plain-text client', async () => {
    const wrongCa = await publish(['--cafile', otherCa], 11)
    expect(wrongCa.code).not.toBe(0)
    expect(wrongCa.stderr).toMatch(/certificate verify failed|TLS|protocol error/i)
    const plain = await publish([], 12)
    expect(plain.code).not.toBe(0)
    await fixture.pipeline.drained()
    expect(await valuesOf(bob.id)).toEqual([10])
  })

  it('is refused by mosquitto_pub when the broker certificate has expired', async () => {
    const expired = await startPrivateMosquitto({
      config: () =>
        shippedListenerSettings('mosquitto-tls.conf', dir).map((line) =>
          line.replace('/server.', '/expired-server.'),
        ),
    })
    cleanups.push(() => expired.dispose())
    const result = await publish(['--cafile', ca], 13, expired.port)
    expect(result.code).not.toBe(0)
    expect(result.stderr).toMatch(/certificate verify failed|expired|TLS error/i)
  })
})

describe('mutual TLS (infra/mosquitto/mosquitto-mtls.conf): the certificate CN is the device', () => {
  let port: number

  beforeAll(async () => {
    port = await brokerAndBridge('mosquitto-mtls.conf', {
      MQTT_CERT_FILE: join(dir, 'iotflow-bridge.pem'),
      MQTT_KEY_FILE: join(dir, 'iotflow-bridge.key'),
      MQTT_AUTH_MODE: 'broker',
    })
  })

  const publishAs = (certificateDir: string, deviceId: number, topicDevice: number, v: number) =>
    publishTo(
      port,
      [
        '--cafile',
        ca,
        '--cert',
        join(certificateDir, `${deviceId}.pem`),
        '--key',
        join(certificateDir, `${deviceId}.key`),
      ],
      topicDevice,
      { timestamp: 1_790_001_000 + v, data: { v } },
    )

  it("stores what a device publishes under its own topic with its certificate, and nothing under another's", async () => {
    const own = await publishAs(dir, alice.id, alice.id, 20)
    expect(own.code, own.stderr).toBe(0)
    await waitFor(async () => (await valuesOf(alice.id)).includes(20), {
      what: "alice's point over mutual TLS",
    })

    await publishAs(dir, alice.id, bob.id, 21) // the ACL drops it at the broker
    // Then one of bob's own: once it is stored, alice's would have been too, had it passed.
    expect((await publishAs(dir, bob.id, bob.id, 22)).code).toBe(0)
    await waitFor(async () => (await valuesOf(bob.id)).includes(22), { what: "bob's point over mutual TLS" })
    await fixture.pipeline.drained()
    expect(await valuesOf(bob.id)).not.toContain(21)
  })

  it('refuses a client without a certificate, with one of another CA, and with an expired one', async () => {
    const anonymous = await publishTo(port, ['--cafile', ca], alice.id, { data: { v: 30 } })
    expect(anonymous.code).not.toBe(0)
    expect((await publishAs(join(dir, 'other'), alice.id, alice.id, 31)).code).not.toBe(0)
    expect((await publishAs(join(dir, 'expired'), alice.id, alice.id, 32)).code).not.toBe(0)
    await fixture.pipeline.drained()
    expect((await valuesOf(alice.id)).filter((v) => v >= 30)).toEqual([])
  })
})
