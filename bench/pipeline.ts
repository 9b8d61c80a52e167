/**
 * End-to-end throughput of 1,000-point batches: the gateway and both writers run as separate
 * processes (as in production) against the real services; concurrent clients send batches for a
 * fixed time; then we wait until both stores hold every accepted point.
 *
 *   pnpm bench:pipeline [--clients 50] [--seconds 20] [--batch 1000]
 *
 * Prints points/s accepted, points/s stored in each store (until drained), request latency
 * p50/p99 and the peak RSS of each process. Talks only to 127.0.0.1.
 */
import { spawn } from 'node:child_process'
import { parseArgs } from 'node:util'
import { queryV1 } from '@iotflow/influx'
import {
  createTestDatabase,
  createTestInfluxDatabase,
  freePort,
  registerDeviceOverHttp,
  uniqueName,
  waitFor,
} from '@iotflow/testkit'
import { peakRssMb, stop } from './processes.js'

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '20' },
    batch: { type: 'string', default: '1000' },
  },
})
const CLIENTS = Number(args.clients)
const SECONDS = Number(args.seconds)
const BATCH = Number(args.batch)
const ADMIN_TOKEN = 'bench-admin-token-0123456789'

const db = await createTestDatabase()
const influx = await createTestInfluxDatabase()
const port = await freePort()
const env = {
  ...process.env,
  LOG_LEVEL: 'warn',
  ADMIN_TOKEN,
  PORT: String(port),
  HEALTH_PORT: '0',
  DATABASE_URL: db.url,
  QUEUE_PREFIX: uniqueName('bench'),
  INFLUX_API: 'v1',
  INFLUX_URL: influx.url,
  INFLUX_DATABASE: influx.database,
}
const base = `http://127.0.0.1:${port}`
const apps = ['gateway', 'writer-postgres', 'writer-influx'].map((name) => ({
  name,
  child: spawn('node', ['--import', 'tsx', `apps/${name}/src/main.ts`], {
    env,
    stdio: ['ignore', 'inherit', 'inherit'],
  }),
}))

try {
  await waitFor(async () => (await fetch(`${base}/health`)).ok, { timeoutMs: 30_000, what: 'the gateway' })
  const devices = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => register(`bench-${i}`)))

  console.log(`sending ${BATCH}-point batches from ${CLIENTS} clients for ${SECONDS} s …`)
  const latencies: number[] = []
  let accepted = 0
  let refused = 0
  const started = performance.now()
  const deadline = started + SECONDS * 1000
  await Promise.all(
    devices.map(async (apiKey, client) => {
      let t = Date.UTC(2026, 0, 1) + client // distinct timestamps per device
      while (performance.now() < deadline) {
        const points = Array.from({ length: BATCH }, (_, i) => ({
          timestamp: t + i,
          data: { seq: i, value: i * 0.5 },
        }))
        t += BATCH
        const body = JSON.stringify({ points })
        const sent = performance.now()
        const response = await fetch(`${base}/api/v1/telemetry`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
          body,
        })
        await response.arrayBuffer()
        latencies.push(performance.now() - sent)
        if (response.status === 202) accepted += BATCH
        else refused += 1
      }
    }),
  )
  const sendSeconds = (performance.now() - started) / 1000

  const secondsUntil = async (what: string, holdsAll: () => Promise<boolean>) => {
    await waitFor(holdsAll, { timeoutMs: 600_000, intervalMs: 250, what })
    return (performance.now() - started) / 1000
  }
  const [postgresSeconds, influxSeconds] = await Promise.all([
    secondsUntil('Postgres to hold every accepted point', async () => {
      const [row] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM telemetry`
      return row?.n === accepted
    }),
    secondsUntil('InfluxDB to hold every accepted point', async () => {
      const series = await queryV1(influx.url, influx.database, 'SELECT count(seq) FROM telemetry')
      return series[0]?.values[0]?.[1] === accepted
    }),
  ])

  latencies.sort((a, b) => a - b)
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0
  const rss = await Promise.all(apps.map(async (a) => [a.name, await peakRssMb(a.child)] as const))
  const rate = (n: number, s: number) => Math.round(n / s).toLocaleString('en-US')

  console.log(`\n${BATCH}-point batches, ${CLIENTS} clients, ${SECONDS} s`)
  console.table({
    'points accepted': accepted.toLocaleString('en-US'),
    'requests refused': refused,
    'accepted points/s': rate(accepted, sendSeconds),
    'stored points/s, Postgres (until drained)': rate(accepted, postgresSeconds),
    'stored points/s, InfluxDB (until drained)': rate(accepted, influxSeconds),
    'stored points/s, both stores': rate(accepted, Math.max(postgresSeconds, influxSeconds)),
    'request p50 ms': pct(50).toFixed(1),
    'request p99 ms': pct(99).toFixed(1),
    ...Object.fromEntries(rss.map(([name, mb]) => [`peak RSS ${name} MB`, mb])),
  })
} finally {
  await Promise.all(apps.map((a) => stop(a.child)))
  await influx.drop()
  await db.drop()
}

async function register(name: string): Promise<string> {
  return (await registerDeviceOverHttp(base, ADMIN_TOKEN, name)).apiKey
}
