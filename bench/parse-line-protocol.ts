/**
 * Micro-benchmark of the line protocol parser: bodies of 5,000 Telegraf-like lines (a measurement,
 * three tags, five fields of every type, a nanosecond timestamp), parsed over and over; then the
 * four readings of `pnpm bench`'s points, as line protocol and as the JSON of /api/v1/telemetry,
 * each parsed as the gateway parses it; then each taken as the gateway takes it up to the queue.
 *
 *   pnpm bench:line-protocol [--lines 5000] [--seconds 5]
 *
 * Prints lines/s and MB/s of text for each body, parsed from its bytes as the gateway gets them,
 * and the CPU it took per 1,000 lines (the steadier figure on a shared machine: it counts this
 * process's time only, the garbage collector's threads included).
 */

import { parseArgs } from 'node:util'
import { gunzipSync, gzipSync } from 'node:zlib'
import { parseJsonBody, parseLineProtocol, parseTelemetryBody, toColumns } from '@iotflow/contracts'
import {
  createIngestService,
  createLineProtocolIngest,
  type FieldType,
  FieldTypeRegistry,
} from '@iotflow/ingest'
import type { BatchEnqueuer, NewBatch } from '@iotflow/queue'

const { values: args } = parseArgs({
  options: { lines: { type: 'string', default: '5000' }, seconds: { type: 'string', default: '5' } },
})
const LINES = Number(args.lines)
const SECONDS = Number(args.seconds)
const START_NS = 1_700_000_000_000_000_000n
const START_MS = Date.now() - 3_600_000

function body(escaped: boolean): string {
  const lines: string[] = []
  for (let i = 0; i < LINES; i++) {
    const ns = START_NS + BigInt(i) * 1_000_000n
    lines.push(
      escaped
        ? `sensor\\ room,site\\,id=north\\ 1,host=edge\\=7,rack=r${i % 40} temp\\ c=${20 + (i % 10) / 10},count=${i}i,up=${i}u,ok=t,note="say \\"hi\\" \\\\ ${i}" ${ns}`
        : `sensor,site=north,host=edge-7,rack=r${i % 40} temp=${20 + (i % 10) / 10},count=${i}i,up=${i}u,ok=t,note="reading ${i}" ${ns}`,
    )
  }
  return lines.join('\n')
}

/** The readings of `pnpm bench`'s scenarios 1 and 6: temperature, humidity, battery, rssi. */
const reading = (i: number) => ({
  temperature: Number((18 + (i % 800) / 100).toFixed(2)),
  humidity: Number((35 + (i % 300) / 10).toFixed(1)),
  battery: 20 + (i % 81),
  rssi: -95 + (i % 51),
})

/** As scenario 6 sends them (bench/harness/line-protocol-bodies.ts): one series, `host` tag, ns. */
function readingsAsLineProtocol(): string {
  const lines: string[] = []
  for (let i = 0; i < LINES; i++) {
    const r = reading(i)
    lines.push(
      `environment,host=edge-box temperature=${r.temperature},humidity=${r.humidity},battery=${r.battery}i,rssi=${r.rssi}i ${START_MS + i}000000`,
    )
  }
  return lines.join('\n')
}

function readingsAsJson(): string {
  const points = Array.from({ length: LINES }, (_, i) => ({ timestamp: START_MS + i, data: reading(i) }))
  return JSON.stringify({ points })
}

/** Parses the body from its bytes, as the gateway receives it, over and over. */
async function measure(
  name: string,
  text: string | Buffer,
  parse: (body: Buffer) => number | Promise<number>,
) {
  const body = Buffer.isBuffer(text) ? text : Buffer.from(text)
  // Warm-up, so the figure is the optimised code's.
  for (let i = 0; i < 20; i++) await parse(body)
  let parsed = 0
  const cpu = process.cpuUsage()
  const started = performance.now()
  while (performance.now() - started < SECONDS * 1000) parsed += await parse(body)
  const elapsed = (performance.now() - started) / 1000
  const used = process.cpuUsage(cpu)
  const bytes = (body.length * parsed) / LINES
  console.log(
    `${name}: ${Math.round(parsed / elapsed).toLocaleString('en')} lines/s, ` +
      `${(bytes / elapsed / 1e6).toFixed(1)} MB/s, ` +
      `${((used.user + used.system) / parsed).toFixed(2)} ms CPU per 1,000 lines (${LINES}-line bodies, ${SECONDS} s)`,
  )
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** As the gateway takes line protocol (once gunzipped): bytes to text, then points. */
function lineProtocol(body: Buffer): number {
  const result = parseLineProtocol(utf8.decode(body), 'ns', { qualifyFields: true })
  if (!result.ok) throw new Error(result.message)
  return result.points.length
}

/** As the gateway takes JSON: bytes to a value (parseJsonBody), then validated points. */
function json(body: Buffer): number {
  const value = parseJsonBody(body)
  if (!value.ok) throw new Error(value.message)
  const result = parseTelemetryBody(value.value, Date.now())
  if (!result.ok) throw new Error(JSON.stringify(result.errors[0]))
  return result.points.length
}

// Up to the queue: the ingest path with its field type registry (kept in memory here, where the
// gateway keeps PostgreSQL's in its cache) and a queue that does what the gateway's does to a batch
// before Redis: columns (packages/queue's enqueue.ts), then JSON for the job.
const types = new Map<string, FieldType>()
const fieldTypes = new FieldTypeRegistry({
  find: async (names) =>
    new Map(names.flatMap((name) => (types.has(name) ? [[name, types.get(name) as FieldType]] : []))),
  claim: async (fields) => {
    for (const [name, type] of fields) if (!types.has(name)) types.set(name, type)
    return new Map([...fields].map(([name]) => [name, types.get(name) as FieldType]))
  },
})
let serialized = 0
const enqueueMany = async (batches: NewBatch[]) => {
  serialized += JSON.stringify({ batch_id: 'b', batches: batches.map(toColumns) }).length
  return batches.map(() => ({ batchId: 'b' }))
}
const enqueuer: BatchEnqueuer = {
  enqueue: async (batch, admission) => {
    await admission
    return (await enqueueMany([batch]))[0] as { batchId: string }
  },
  enqueueMany,
  partitionOf: () => 0,
  close: async () => {},
}
const ingestService = createIngestService({ fieldTypes, enqueuer })
const limits = { ...(await import('@iotflow/contracts')).defaultTelemetryLimits, maxPoints: LINES }
const ingestLineProtocol = createLineProtocolIngest({ ingestService, limits })
const device = { id: 1, device_type: 'sensor' }

async function lineProtocolToQueue(gzipped: Buffer): Promise<number> {
  const outcome = await ingestLineProtocol({ device }, utf8.decode(gunzipSync(gzipped)), 'ns')
  if (outcome.status !== 204) throw new Error(JSON.stringify(outcome))
  return outcome.accepted
}

async function jsonToQueue(body: Buffer): Promise<number> {
  const value = parseJsonBody(body)
  if (!value.ok) throw new Error(value.message)
  const outcome = await ingestService.ingest(device, value.value)
  if (outcome.status !== 202) throw new Error(JSON.stringify(outcome))
  return outcome.accepted
}

await measure('plain lines  ', body(false), lineProtocol)
await measure('escaped lines', body(true), lineProtocol)
await measure('bench readings, line protocol (parse only)', readingsAsLineProtocol(), lineProtocol)
await measure('bench readings, JSON (parse and validate) ', readingsAsJson(), json)
await measure(
  'bench readings, gzipped line protocol to the queue (scenario 6)',
  gzipSync(readingsAsLineProtocol()),
  lineProtocolToQueue,
)
await measure('bench readings, JSON to the queue (scenario 1)         ', readingsAsJson(), jsonToQueue)
if (serialized === 0) throw new Error('nothing was serialized')
