/**
 * Micro-benchmark of the line protocol parser: bodies of 5,000 Telegraf-like lines (a measurement,
 * three tags, five fields of every type, a nanosecond timestamp), parsed over and over; then the
 * four readings of `pnpm bench`'s points, as line protocol and as the JSON of /api/v1/telemetry,
 * each parsed as the gateway parses it.
 *
 *   pnpm bench:line-protocol [--lines 5000] [--seconds 5]
 *
 * Prints lines/s and MB/s of text for each body, parsed from its bytes as the gateway gets them.
 */
import { parseArgs } from 'node:util'
import { parseJsonBody, parseLineProtocol, parseTelemetryBody } from '@iotflow/contracts'

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
function measure(name: string, text: string, parse: (body: Buffer) => number) {
  const body = Buffer.from(text)
  // Warm-up, so the figure is the optimised code's.
  for (let i = 0; i < 20; i++) parse(body)
  let parsed = 0
  const started = performance.now()
  while (performance.now() - started < SECONDS * 1000) parsed += parse(body)
  const elapsed = (performance.now() - started) / 1000
  const bytes = (body.length * parsed) / LINES
  console.log(
    `${name}: ${Math.round(parsed / elapsed).toLocaleString('en')} lines/s, ` +
      `${(bytes / elapsed / 1e6).toFixed(1)} MB/s (${LINES}-line bodies, ${SECONDS} s)`,
  )
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** As the gateway takes line protocol (once gunzipped): bytes to text, then points. */
function lineProtocol(body: Buffer): number {
  const result = parseLineProtocol(utf8.decode(body))
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

measure('plain lines  ', body(false), lineProtocol)
measure('escaped lines', body(true), lineProtocol)
measure('bench readings, line protocol (parse only)', readingsAsLineProtocol(), lineProtocol)
measure('bench readings, JSON (parse and validate) ', readingsAsJson(), json)
