/**
 * The yardstick of `pnpm bench` (scenario 5): the predecessor's design reduced to its cost, a
 * gateway that writes both stores inside each request. Per request it looks the device up by its
 * key, parses the JSON, and awaits a multi-row INSERT into PostgreSQL (postgres.js) and a line
 * protocol POST to InfluxDB's /write, both at once, then answers 202. No queue, no validation, no
 * retries: what IoTFlow adds (durability, the contract, backpressure) is what the ratio prices.
 * It runs as a process of its own, so its CPU and memory are read like the apps'.
 *
 * Environment: PORT, DATABASE_URL (migrated: the telemetry table), INFLUX_URL, INFLUX_DATABASE,
 * DEVICES_FILE (lines "<id> <api key> <name>"). GET /stats: points answered and written per store.
 */
import { readFileSync } from 'node:fs'
import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from 'node:http'
import postgres from 'postgres'

const env = (name: string) => process.env[name] ?? fail(`${name} is not set`)
const sql = postgres(env('DATABASE_URL'), { max: 10, onnotice: () => {} })
const influxWrite = new URL('/write', env('INFLUX_URL'))
influxWrite.search = new URLSearchParams({ db: env('INFLUX_DATABASE'), precision: 'ms' }).toString()
const influxAgent = new Agent({ keepAlive: true, maxSockets: 32 })

const deviceByKey = new Map<string, number>()
for (const line of readFileSync(env('DEVICES_FILE'), 'utf8').split('\n')) {
  const [id, key] = line.split(' ')
  if (id && key && /^\d+$/.test(id)) deviceByKey.set(key, Number(id))
}

const stats = { answered_points: 0, postgres_points: 0, influx_points: 0, in_flight: 0, failures: 0 }
const partitions = new Map<string, Promise<unknown>>()

interface Point {
  timestamp?: number | string
  data: Record<string, string | number | boolean>
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') return answer(res, 200, stats)
  if (req.method === 'GET' && req.url === '/health') return answer(res, 200, { status: 'healthy' })
  if (req.method !== 'POST' || req.url !== '/api/v1/telemetry')
    return answer(res, 404, { error: 'Not Found' })
  const deviceId = deviceByKey.get(String(req.headers['x-api-key']))
  if (deviceId === undefined) return answer(res, 401, { error: 'Unauthorized' })
  stats.in_flight++
  ingest(req, deviceId)
    .then((accepted) => answer(res, 202, { accepted }))
    .catch((error: Error) => {
      if (stats.failures++ < 5) console.error(`yardstick: ${error.message}`)
      answer(res, 500, { error: error.message })
    })
    .finally(() => stats.in_flight--)
})

async function ingest(req: IncomingMessage, deviceId: number): Promise<number> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  const body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  const points: Point[] = Array.isArray(body) ? body : (body.points ?? [body])
  const rows = points.map((p) => ({
    device_id: deviceId,
    time: new Date(p.timestamp === undefined ? Date.now() : p.timestamp),
    data: p.data,
  }))
  const lines = rows.map((row) => `telemetry,device_id=${deviceId} ${fields(row.data)} ${row.time.getTime()}`)
  await ensurePartitions(rows.map((row) => row.time))
  await Promise.all([
    sql`INSERT INTO telemetry ${sql(rows, 'device_id', 'time', 'data')}`.then(() => {
      stats.postgres_points += rows.length
    }),
    postInflux(lines.join('\n')).then(() => {
      stats.influx_points += rows.length
    }),
  ])
  stats.answered_points += rows.length
  return rows.length
}

/**
 * The telemetry table is partitioned by day: a day's partition is created once, the first time the
 * day is seen, and every request of that day waits for that one creation (concurrent calls of
 * telemetry_ensure_partition for a new day can fail with "relation already exists").
 */
async function ensurePartitions(times: Date[]) {
  for (const day of new Set(times.map((t) => t.toISOString().slice(0, 10)))) {
    let created = partitions.get(day)
    if (!created) {
      created = sql`SELECT telemetry_ensure_partition(${day}::date)`.catch((error) => {
        partitions.delete(day)
        throw error
      })
      partitions.set(day, created)
    }
    await created
  }
}

function fields(data: Point['data']): string {
  return Object.entries(data)
    .map(([name, value]) =>
      typeof value === 'string' ? `${name}="${value.replace(/["\\]/g, '\\$&')}"` : `${name}=${value}`,
    )
    .join(',')
}

function postInflux(body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(influxWrite, { method: 'POST', agent: influxAgent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.once('end', () =>
        res.statusCode === 204
          ? resolve()
          : reject(new Error(`InfluxDB ${res.statusCode}: ${Buffer.concat(chunks).toString()}`)),
      )
    })
    req.once('error', reject)
    req.end(body)
  })
}

function answer(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

function fail(message: string): never {
  console.error(`yardstick: ${message}`)
  process.exit(2)
}

const shutdown = () => {
  server.close(() => void sql.end({ timeout: 5 }).then(() => process.exit(0)))
  server.closeAllConnections()
}
process.once('SIGTERM', shutdown)
process.once('SIGINT', shutdown)
server.keepAliveTimeout = 60_000
server.listen(Number(env('PORT')), '127.0.0.1')
