/**
 * Query latency on a realistic history: 10 million points across 1,000 devices (10,000 each, one
 * every 10 s, so a little over a day per device) in PostgreSQL, read through a gateway process.
 *
 *   pnpm bench:query [--devices 1000] [--points 10000] [--iterations 300] [--fresh]
 *
 * The data is loaded once into the database `iotflow_bench_query` and reused by later runs
 * (--fresh reloads it). Prints p50/p95/p99 of: a 24-hour 1-minute mean for one device, the latest
 * values of one device, and a page of 1,000 raw points. Talks only to 127.0.0.1.
 */
import { spawn } from 'node:child_process'
import { parseArgs } from 'node:util'
import { createSql, migrate } from '@iotflow/db'
import { freePort, serviceUrls, waitFor } from '@iotflow/testkit'
import postgres from 'postgres'
import { APP_NODE_FLAGS, buildApps } from '../infra/build/build-apps.js'

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    points: { type: 'string', default: '10000' },
    iterations: { type: 'string', default: '300' },
    fresh: { type: 'boolean', default: false },
  },
})
const DEVICES = Number(args.devices)
const POINTS = Number(args.points)
const ITERATIONS = Number(args.iterations)
const INTERVAL_S = 10
const ADMIN_TOKEN = 'bench-admin-token-0123456789'
const DATABASE = 'iotflow_bench_query'

const url = new URL(serviceUrls.postgres)
url.pathname = `/${DATABASE}`
const databaseUrl = url.toString()

// The newest point of every device is 5 minutes before the load; the oldest POINTS * 10 s earlier.
await prepareData()

const port = await freePort()
await buildApps()
const gateway = spawn('node', [...APP_NODE_FLAGS, 'dist/gateway/main.js'], {
  env: {
    ...process.env,
    LOG_LEVEL: 'warn',
    ADMIN_TOKEN,
    PORT: String(port),
    DATABASE_URL: databaseUrl,
    QUEUE_PREFIX: 'bench-query',
    MIGRATE_ON_START: 'false',
  },
  stdio: ['ignore', 'inherit', 'inherit'],
})
const base = `http://127.0.0.1:${port}`
try {
  await waitFor(async () => (await fetch(`${base}/health`)).ok, { timeoutMs: 30_000, what: 'the gateway' })
  const sql = createSql(databaseUrl, { max: 1 })
  const [{ newest }] =
    (await sql`SELECT max(time) AS newest FROM telemetry WHERE device_id = 1`) as unknown as [
      { newest: Date },
    ]
  await sql.end()
  const end = newest.getTime() + 1
  const start = end - 24 * 3600_000
  const device = () => 1 + Math.floor(Math.random() * DEVICES)
  const iso = (ms: number) => new Date(ms).toISOString()

  const scenarios = {
    '24 h of 1-minute means, one device': () =>
      `/api/v1/telemetry/${device()}/aggregated?field=temperature&aggregation=mean&window=1m&start=${iso(start)}&end=${iso(end)}`,
    'latest values, one device': () => `/api/v1/telemetry/${device()}/latest`,
    'a page of 1,000 raw points': () =>
      `/api/v1/telemetry/${device()}?start=${iso(start)}&end=${iso(end)}&limit=1000`,
  }
  const table: Record<string, Record<string, string | number>> = {}
  for (const [name, path] of Object.entries(scenarios)) {
    const latencies: number[] = []
    for (let i = 0; i < 20; i++) await get(path()) // warm-up
    for (let i = 0; i < ITERATIONS; i++) {
      const started = performance.now()
      const body = await get(path())
      latencies.push(performance.now() - started)
      if (i === 0) table[name] = { 'result size': summarise(body) }
    }
    latencies.sort((a, b) => a - b)
    const pct = (p: number) =>
      (latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0).toFixed(1)
    table[name] = { ...table[name], 'p50 ms': pct(50), 'p95 ms': pct(95), 'p99 ms': pct(99) }
  }
  console.log(
    `\n${(DEVICES * POINTS).toLocaleString('en-US')} points, ${DEVICES} devices, ${ITERATIONS} requests each (sequential, through the gateway)`,
  )
  console.table(table)
} finally {
  gateway.kill('SIGTERM')
  await new Promise((resolve) => gateway.once('exit', resolve))
}

async function get(path: string): Promise<unknown> {
  const response = await fetch(base + path, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`)
  return response.json()
}

function summarise(body: unknown): string {
  const b = body as { buckets?: unknown[]; fields?: object; points?: unknown[] }
  if (b.buckets) return `${b.buckets.length} buckets`
  if (b.points) return `${b.points.length} points`
  return `${Object.keys(b.fields ?? {}).length} fields`
}

async function dropDatabase() {
  const adminUrl = new URL(serviceUrls.postgres)
  adminUrl.pathname = '/postgres'
  const admin = postgres(adminUrl.toString(), { max: 1, onnotice: () => {} })
  await admin.unsafe(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`)
  await admin.end()
}

/** True when the database holds exactly the data this run asks for. */
async function alreadyLoaded(): Promise<boolean> {
  const sql = createSql(databaseUrl, { max: 1 })
  try {
    const [row] = await sql<{ devices: number; points: number }[]>`
      SELECT (SELECT count(*)::int FROM devices) AS devices,
             (SELECT count(*)::int FROM telemetry WHERE device_id = 1) AS points`
    return row?.devices === DEVICES && row?.points === POINTS
  } finally {
    await sql.end()
  }
}

async function prepareData() {
  if (args.fresh) await dropDatabase()
  await migrate(databaseUrl)
  if (await alreadyLoaded()) {
    console.log(`reusing the data already loaded in ${DATABASE} (--fresh reloads it)`)
    return
  }
  await dropDatabase()
  await migrate(databaseUrl)
  const sql = createSql(databaseUrl, { max: 1 })
  try {
    const newest = Math.floor((Date.now() - 5 * 60_000) / 1000) * 1000
    const oldest = newest - (POINTS - 1) * INTERVAL_S * 1000
    console.log(`loading ${(DEVICES * POINTS).toLocaleString('en-US')} points into ${DATABASE} …`)
    const started = performance.now()
    await sql`
      INSERT INTO devices (name, device_type, api_key_hash, api_key_prefix)
      SELECT 'bench-' || n, 'sensor', sha256(('bench-key-' || n)::bytea), 'iot_bench'
      FROM generate_series(1, ${DEVICES}::int) AS n`
    await sql`
      SELECT telemetry_ensure_partition(day::date)
      FROM generate_series(${new Date(oldest)}::timestamptz, ${new Date(newest)}::timestamptz, '1 day') AS day
      UNION ALL SELECT telemetry_ensure_partition(${new Date(newest)}::date)`
    const chunk = 50
    for (let first = 1; first <= DEVICES; first += chunk) {
      await sql`
        INSERT INTO telemetry (device_id, time, data, received_at)
        SELECT d, ${new Date(oldest)}::timestamptz + (i * ${INTERVAL_S}::int) * interval '1 second',
               jsonb_build_object('temperature', round((20 + 5 * sin(i / 360.0) + random())::numeric, 2),
                                  'humidity', round((50 + 10 * cos(i / 720.0))::numeric, 1),
                                  'door_open', i % 97 = 0),
               now()
        FROM generate_series(${first}::int, ${Math.min(first + chunk - 1, DEVICES)}::int) AS d,
             generate_series(0, ${POINTS - 1}::int) AS i`
      process.stdout.write(`\r  ${Math.min(first + chunk - 1, DEVICES)} / ${DEVICES} devices`)
    }
    await sql`
      INSERT INTO telemetry_latest (device_id, field, time, value)
      SELECT DISTINCT ON (device_id, key) device_id, key, time, value
      FROM telemetry, jsonb_each(data)
      WHERE time > ${new Date(newest - 3600_000)}
      ORDER BY device_id, key, time DESC`
    await sql`ANALYZE telemetry`
    await sql`ANALYZE telemetry_latest`
    console.log(`\n  loaded in ${((performance.now() - started) / 1000).toFixed(0)} s`)
  } finally {
    await sql.end()
  }
}
