/**
 * End-to-end throughput of single-point QoS 1 MQTT messages: a private Mosquitto, the bridge and
 * both writers as separate processes (as in production) against the real Redis, Postgres and
 * InfluxDB. Each of N devices publishes from its own connection as fast as PUBACKs allow (a
 * bounded window of unacknowledged messages) for a fixed time; then we wait until both stores
 * hold every message the broker accepted.
 *
 *   pnpm bench:mqtt [--devices 20] [--seconds 15] [--window 20] [--connections 16]
 *
 * Prints messages/s acknowledged by the broker, queued by the bridge (PUBACKed to the bridge's
 * broker), stored in each store (until drained), and the peak RSS of each process. Talks only
 * to 127.0.0.1.
 */
import { spawn } from 'node:child_process'
import { parseArgs } from 'node:util'
import { createDevicesRepository } from '@iotflow/db'
import { queryV1 } from '@iotflow/influx'
import {
  createTestDatabase,
  createTestInfluxDatabase,
  freePort,
  startPrivateMosquitto,
  uniqueName,
  waitFor,
} from '@iotflow/testkit'
import mqtt from 'mqtt'
import { peakRssMb, stop } from './processes.js'

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '15' },
    window: { type: 'string', default: '20' },
    connections: { type: 'string', default: '16' },
  },
})
const DEVICES = Number(args.devices)
const SECONDS = Number(args.seconds)
const WINDOW = Number(args.window)

const db = await createTestDatabase()
const influx = await createTestInfluxDatabase()
const broker = await startPrivateMosquitto()
const bridgeHealth = await freePort()
const env = {
  ...process.env,
  LOG_LEVEL: 'warn',
  HEALTH_PORT: '0',
  DATABASE_URL: db.url,
  QUEUE_PREFIX: uniqueName('bench'),
  INFLUX_API: 'v1',
  INFLUX_URL: influx.url,
  INFLUX_DATABASE: influx.database,
  MQTT_URL: broker.url,
  MQTT_CONNECTIONS: args.connections,
}
const start = (name: string, extra: Record<string, string> = {}) => ({
  name,
  child: spawn('node', ['--import', 'tsx', `apps/${name}/src/main.ts`], {
    env: { ...env, ...extra },
    stdio: ['ignore', 'inherit', 'inherit'],
  }),
})
const apps = [
  start('mqtt-bridge', { HEALTH_PORT: String(bridgeHealth) }),
  start('writer-postgres'),
  start('writer-influx'),
]

try {
  await waitFor(async () => (await fetch(`http://127.0.0.1:${bridgeHealth}/health/ready`)).ok, {
    timeoutMs: 30_000,
    what: 'the bridge',
  })
  const repository = createDevicesRepository(db.sql)
  const devices = await Promise.all(
    Array.from({ length: DEVICES }, async (_, i) => {
      const { device, apiKey } = await repository.create({ name: `bench-${i}` })
      return { id: device.id, apiKey }
    }),
  )
  const clients = await Promise.all(devices.map(() => mqtt.connectAsync(broker.url, { protocolVersion: 5 })))

  console.log(`publishing single-point QoS 1 messages from ${DEVICES} devices for ${SECONDS} s …`)
  let acked = 0
  const started = performance.now()
  const deadline = started + SECONDS * 1000
  await Promise.all(
    devices.map(async (device, d) => {
      const client = clients[d] as mqtt.MqttClient
      const topic = `iotflow/devices/${device.id}/telemetry`
      let t = Date.UTC(2026, 0, 1)
      await Promise.all(
        Array.from({ length: WINDOW }, async () => {
          while (performance.now() < deadline) {
            const payload = JSON.stringify({ api_key: device.apiKey, timestamp: t++, data: { value: 21.5 } })
            await client.publishAsync(topic, payload, { qos: 1 })
            acked++
          }
        }),
      )
    }),
  )
  const publishSeconds = (performance.now() - started) / 1000
  await Promise.all(clients.map((c) => c.endAsync()))

  const secondsUntil = async (what: string, holdsAll: () => Promise<boolean>) => {
    await waitFor(holdsAll, { timeoutMs: 600_000, intervalMs: 250, what })
    return (performance.now() - started) / 1000
  }
  const [bridgeSeconds, postgresSeconds, influxSeconds] = await Promise.all([
    secondsUntil('the bridge to queue every message', async () => {
      const metrics = await (await fetch(`http://127.0.0.1:${bridgeHealth}/metrics`)).text()
      return Number(/^iotflow_mqtt_messages_accepted_total (\d+)/m.exec(metrics)?.[1]) >= acked
    }),
    secondsUntil('Postgres to hold every message', async () => {
      const [row] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM telemetry`
      return row?.n === acked
    }),
    secondsUntil('InfluxDB to hold every message', async () => {
      const series = await queryV1(influx.url, influx.database, 'SELECT count(value) FROM telemetry')
      return series[0]?.values[0]?.[1] === acked
    }),
  ])

  const rss = await Promise.all(apps.map(async (a) => [a.name, await peakRssMb(a.child)] as const))
  const rate = (n: number, s: number) => Math.round(n / s).toLocaleString('en-US')
  console.log(`\nsingle-point QoS 1 messages, ${DEVICES} devices × ${WINDOW} in flight, ${SECONDS} s`)
  console.table({
    'messages accepted by the broker': acked.toLocaleString('en-US'),
    'broker PUBACKs/s (publishers)': rate(acked, publishSeconds),
    'queued messages/s, bridge (until all queued)': rate(acked, bridgeSeconds),
    'stored messages/s, Postgres (until drained)': rate(acked, postgresSeconds),
    'stored messages/s, InfluxDB (until drained)': rate(acked, influxSeconds),
    'stored messages/s, both stores': rate(acked, Math.max(postgresSeconds, influxSeconds)),
    ...Object.fromEntries(rss.map(([name, mb]) => [`peak RSS ${name} MB`, mb])),
  })
} finally {
  await Promise.all(apps.map((a) => stop(a.child)))
  await broker.dispose()
  await influx.drop()
  await db.drop()
}
