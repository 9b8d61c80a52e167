/**
 * The Node HTTP load generator of `pnpm bench` (issue 16), run as a process of its own so that its
 * CPU is read apart. It sends what wrk-telemetry.lua sends (the same bodies, devices and timestamps)
 * in one of two ways:
 * - closed loop (BENCH_RATE unset): BENCH_CONNECTIONS clients, each posting its next request as soon
 *   as the previous one is answered, as a fleet's uploader or an outside benchmark does;
 * - open loop (BENCH_RATE requests/s): requests go out on a fixed schedule whatever the answers, and
 *   each one's latency counts from when it was due, not from when a free connection took it (no
 *   coordinated omission: a stall shows in every request it delayed). The schedule first runs
 *   BENCH_WARM_UP_SECONDS (5) at the same rate, as wrk2's calibration does, then BENCH_SECONDS: the
 *   latencies of the requests due in the warm-up are reported apart (`warm_up_ms`), so that the
 *   figures describe a running system and the start (cold JIT, connections being opened, keys not
 *   yet cached) is still shown, not hidden.
 * A 503 is answered by waiting its Retry-After (closed loop) or counted (open loop).
 * Prints one line "BENCH_RESULT {json}" in wrk.ts's WrkReport shape.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'

const env = (name: string, fallback?: string) => {
  const value = process.env[name] ?? fallback
  if (value === undefined) throw new Error(`${name} is not set`)
  return value
}
const url = new URL(env('BENCH_URL'))
const connections = Number(env('BENCH_CONNECTIONS'))
const pointsPerRequest = Number(env('BENCH_POINTS', '1'))
const firstTimestamp = Number(env('BENCH_FIRST_TIMESTAMP_MS'))
const seconds = Number(env('BENCH_SECONDS'))
const rate = process.env.BENCH_RATE ? Number(process.env.BENCH_RATE) : undefined
const warmUpMs = rate === undefined ? 0 : Number(env('BENCH_WARM_UP_SECONDS', '5')) * 1000
/** An answer later than this is a timeout, as wrk's --timeout 30s. */
const TIMEOUT_MS = 30_000

const devices = readFileSync(env('BENCH_DEVICES_FILE'), 'utf8')
  .split('\n')
  .flatMap((line) => {
    const match = /^(\d+)\s+(\S+)/.exec(line)
    return match ? [{ key: match[2] as string, nextTimestamp: firstTimestamp }] : []
  })
if (devices.length === 0) throw new Error('no devices in BENCH_DEVICES_FILE')

// The field sets of wrk-telemetry.lua: a few realistic ones, chosen by timestamp.
const variants = Array.from(
  { length: 64 },
  (_, i) =>
    `{"temperature":${(18 + ((i * 37) % 80) / 10).toFixed(2)},"humidity":${(35 + ((i * 53) % 300) / 10).toFixed(1)},"battery":${20 + ((i * 7) % 80)},"rssi":${-95 + ((i * 11) % 50)}}`,
)
const point = (timestamp: number) => `{"timestamp":${timestamp},"data":${variants[timestamp % 64]}}`

let nextDevice = 0
function nextRequest(): { key: string; body: string } {
  const device = devices[nextDevice] as (typeof devices)[number]
  nextDevice = (nextDevice + 1) % devices.length
  const timestamp = device.nextTimestamp
  device.nextTimestamp += pointsPerRequest
  if (pointsPerRequest === 1) return { key: device.key, body: point(timestamp) }
  const points: string[] = []
  for (let i = 0; i < pointsPerRequest; i++) points.push(point(timestamp + i))
  return { key: device.key, body: `{"points":[${points.join(',')}]}` }
}

const agent = new Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections })
const statuses: Record<string, number> = {}
const latencies = { accepted: [] as number[], refused: [] as number[], other: [] as number[] }
/** Open loop: the latencies of the requests due in the warm-up, kept out of `latencies`. */
const warmUpLatencies: number[] = []
const errors = { connect: 0, read: 0, write: 0, status: 0, timeout: 0 }
let requests = 0
/** BENCH_TIMELINE_FILE: every answer's due time (epoch ms) and latency, to find when stalls happened. */
const timelineFile = process.env.BENCH_TIMELINE_FILE
const timeline: string[] | undefined = timelineFile ? [] : undefined
let firstRefusal: number | undefined

interface Answer {
  status: number
  retryAfterS: number
}

function post(key: string, body: string): Promise<Answer | undefined> {
  return new Promise((resolve) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        timeout: TIMEOUT_MS,
        headers: {
          'content-type': 'application/json',
          'x-api-key': key,
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        res.resume()
        res.once('end', () =>
          resolve({ status: res.statusCode ?? 0, retryAfterS: Number(res.headers['retry-after'] ?? 1) || 1 }),
        )
        res.once('error', () => {
          errors.read++
          resolve(undefined)
        })
      },
    )
    let timedOut = false
    req.once('timeout', () => {
      timedOut = true
      errors.timeout++
      req.destroy()
    })
    req.once('error', () => {
      if (!timedOut) errors.connect++
      resolve(undefined)
    })
    req.end(body)
  })
}

/** Sends one request due at `dueMs` (performance.now()) and records its answer and latency. */
async function send(dueMs: number): Promise<Answer | undefined> {
  const { key, body } = nextRequest()
  requests++
  const answer = await post(key, body)
  if (!answer) return undefined
  const latency = performance.now() - dueMs
  if (timeline) timeline.push(`${Math.round(performance.timeOrigin + dueMs)} ${latency.toFixed(1)}`)
  statuses[answer.status] = (statuses[answer.status] ?? 0) + 1
  if (dueMs - started < warmUpMs) warmUpLatencies.push(latency)
  else if (answer.status === 202 || answer.status === 204) latencies.accepted.push(latency)
  else if (answer.status === 503) {
    latencies.refused.push(latency)
    firstRefusal ??= Date.now()
  } else {
    errors.status++
    latencies.other.push(latency)
  }
  return answer
}

const started = performance.now()
const endAt = started + warmUpMs + seconds * 1000
if (rate === undefined) {
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < endAt) {
        const answer = await send(performance.now())
        if (answer?.status === 503) await sleep(answer.retryAfterS * 1000)
      }
    }),
  )
} else {
  // Every millisecond, whatever is due goes out; the schedule never waits for an answer.
  const inFlight = new Set<Promise<unknown>>()
  let sent = 0
  while (performance.now() < endAt) {
    const due = Math.floor(((performance.now() - started) * rate) / 1000)
    for (; sent < due; sent++) {
      const sending = send(started + (sent * 1000) / rate)
      inFlight.add(sending)
      void sending.finally(() => inFlight.delete(sending))
    }
    await sleep(1)
  }
  await Promise.all(inFlight)
}
const durationMs = performance.now() - started
if (timeline) writeFileSync(`${timelineFile}-${process.pid}`, timeline.join('\n'))
agent.destroy()

const summarize = (values: number[]) => {
  values.sort((a, b) => a - b)
  const at = (p: number) => values[Math.min(values.length - 1, Math.floor((p / 100) * values.length))]
  return { count: values.length, p50: at(50), p99: at(99), max: values.at(-1) }
}
const all = summarize([...latencies.accepted, ...latencies.refused, ...latencies.other])
const cpu = process.cpuUsage()
console.log(
  `BENCH_RESULT ${JSON.stringify({
    duration_ms: durationMs,
    requests,
    errors,
    statuses,
    latency_ms: { p50: all.p50 ?? 0, p99: all.p99 ?? 0, max: all.max ?? 0 },
    exact: true,
    by_status_ms: {
      accepted: summarize(latencies.accepted),
      refused: summarize(latencies.refused),
      other: summarize(latencies.other),
    },
    ...(warmUpMs > 0 && { warm_up_ms: { seconds: warmUpMs / 1000, ...summarize(warmUpLatencies) } }),
    first_refusal_epoch_ms: firstRefusal,
    bodies_exhausted: 0,
    cpu_seconds: (cpu.user + cpu.system) / 1e6,
  })}`,
)
