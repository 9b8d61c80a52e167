/**
 * A fleet of simulated devices sending telemetry to a running IoTFlow (e.g. `npm start`):
 *
 *   pnpm simulate --devices 1000 --rate 5000 [--transport http|mqtt] [--batch 1] [--seconds 60]
 *                 [--url http://127.0.0.1:8080] [--mqtt-url mqtt://127.0.0.1:1883] [--admin-token …]
 *
 * --rate is in points per second over the whole fleet (messages/s = rate / batch); 0 sends each
 * device's next message as soon as the previous one is answered. Devices are registered through the
 * admin API once and reused (their keys are kept in --devices-file). Each device sends one message
 * at a time, waits for its answer (202 / PUBACK) and honours Retry-After. Prints every second what
 * was sent, accepted and refused and the latency of the answers; Ctrl-C stops early.
 * Talks only to the URLs given (127.0.0.1 by default).
 */
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { loadOrRegisterFleet, mapLimit } from './simulator/fleet.js'
import { createHttpSender } from './simulator/http-sender.js'
import { MqttPublisher } from './simulator/mqtt-publisher.js'
import { runSimulation, type SendMessage, type TelemetryPoint } from './simulator/simulation.js'
import type { Tally } from './simulator/tally.js'

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '5000' },
    transport: { type: 'string', default: 'http' },
    batch: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '60' },
    url: { type: 'string', default: 'http://127.0.0.1:8080' },
    'mqtt-url': { type: 'string', default: 'mqtt://127.0.0.1:1883' },
    'admin-token': { type: 'string' },
    'devices-file': { type: 'string', default: '.iotflow/simulator-devices.txt' },
    'name-prefix': { type: 'string', default: 'sim' },
    connections: { type: 'string', description: 'HTTP connections at most (default: min(devices, 200))' },
    quiet: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
})

const devicesCount = positiveInteger('devices')
const pointsPerMessage = positiveInteger('batch')
const pointsPerSecond = Number(args.rate)
const seconds = Number(args.seconds)
const transport = args.transport
if (transport !== 'http' && transport !== 'mqtt') fail('--transport is http or mqtt')
if (!Number.isFinite(pointsPerSecond) || pointsPerSecond < 0) fail('--rate is points per second, 0 or more')
if (!(seconds > 0)) fail('--seconds must be more than 0')

const devices = await loadOrRegisterFleet({
  gatewayUrl: args.url,
  adminToken: await adminToken(),
  count: devicesCount,
  namePrefix: args['name-prefix'],
  devicesFile: args['devices-file'],
})

/** Refusals the bridge answers on a device's errors topic (MQTT acknowledges them all the same). */
const refusedByBridge = new Map<string, number>()
const connection = transport === 'http' ? await httpConnection() : await mqttConnection()

const stop = new AbortController()
process.once('SIGINT', () => stop.abort())
const messageRate = pointsPerSecond / pointsPerMessage
const target =
  pointsPerSecond === 0
    ? 'as fast as answered'
    : `${fmt(pointsPerSecond)} points/s = ${fmt(messageRate)} messages/s`
if (!args.json) {
  console.log(
    `${devices.length} devices → ${transport === 'http' ? args.url : args['mqtt-url']} over ${transport}, ` +
      `${pointsPerMessage} point(s) a message, ${target}, ${seconds} s`,
  )
}
const cpuBefore = process.cpuUsage()
if (args.json) console.log('SIMULATION_STARTED')
const { total, seconds: sendSeconds } = await runSimulation({
  devices,
  send: connection.send,
  pointsPerMessage,
  pointsPerSecond,
  seconds,
  signal: stop.signal,
  onSecond:
    args.quiet || args.json
      ? undefined
      : (second, tally) => console.log(`${String(second).padStart(4)} s  ${line(tally)}`),
})
const cpu = process.cpuUsage(cpuBefore)
await connection.close()

const latency = total.latency()
const summary = {
  transport,
  devices: devices.length,
  points_per_message: pointsPerMessage,
  seconds: sendSeconds,
  sent: total.sent,
  accepted: total.accepted,
  refused: Object.fromEntries(total.refused),
  refused_by_bridge: Object.fromEntries(refusedByBridge),
  missed: total.missed,
  accepted_messages_per_second: total.accepted / sendSeconds,
  accepted_points_per_second: (total.accepted * pointsPerMessage) / sendSeconds,
  latency_ms: latency,
  cpu_seconds: (cpu.user + cpu.system) / 1e6,
}
if (args.json) console.log(`SIMULATION_RESULT ${JSON.stringify(summary)}`)
else {
  console.log(`\ntotal  ${line(total)}`)
  console.log(
    `accepted ${fmt(summary.accepted_messages_per_second)} messages/s = ${fmt(summary.accepted_points_per_second)} points/s` +
      (transport === 'mqtt'
        ? ` (PUBACKs of the broker; refused by the bridge: ${JSON.stringify(summary.refused_by_bridge)})`
        : '') +
      `; simulator CPU ${summary.cpu_seconds.toFixed(1)} s`,
  )
}

function line(tally: Tally): string {
  const { p50, p99 } = tally.latency()
  const refused = [...tally.refused].map(([status, n]) => `${status}×${n}`).join(' ') || '0'
  return (
    `sent ${fmt(tally.sent)}  accepted ${fmt(tally.accepted)}  refused ${refused}` +
    (tally.missed ? `  not sent (every device waiting) ${fmt(tally.missed)}` : '') +
    `  latency p50 ${ms(p50)} p99 ${ms(p99)}`
  )
}

async function httpConnection() {
  const sender = createHttpSender(args.url, Number(args.connections ?? Math.min(devices.length, 200)))
  const send: SendMessage = async (device, points) => {
    const answer = await sender.send(device.apiKey, JSON.stringify(body(points)))
    return {
      accepted: answer.status === 202,
      status: String(answer.status),
      retryAfterMs: answer.retryAfterMs,
    }
  }
  return { send, close: async () => sender.close() }
}

async function mqttConnection() {
  const suffix = Math.random().toString(36).slice(2, 8)
  const publishers = new Map<number, MqttPublisher>()
  await mapLimit(devices, 50, async (device) => {
    const publisher = await MqttPublisher.connect(
      args['mqtt-url'],
      `${device.name}-${suffix}`,
      (_topic, payload) => {
        const status = String(
          (JSON.parse(payload.toString()) as { statusCode?: number }).statusCode ?? 'error',
        )
        refusedByBridge.set(status, (refusedByBridge.get(status) ?? 0) + 1)
      },
    )
    publisher.subscribe(`iotflow/devices/${device.id}/errors`)
    publishers.set(device.id, publisher)
  })
  const send: SendMessage = (device, points) =>
    (publishers.get(device.id) as MqttPublisher)
      .publish(
        `iotflow/devices/${device.id}/telemetry`,
        JSON.stringify({ api_key: device.apiKey, ...body(points) }),
      )
      .then(
        () => ({ accepted: true, status: 'PUBACK' }),
        (error: Error) => ({ accepted: false, status: error.message }),
      )
  return { send, close: () => Promise.all([...publishers.values()].map((p) => p.close())).then(() => {}) }
}

/** One point as the one-point body, several as `{"points": [...]}`. */
function body(points: TelemetryPoint[]) {
  return points.length === 1 ? points[0] : { points }
}

/** --admin-token, else ADMIN_TOKEN, else the token `npm start` generated. */
async function adminToken(): Promise<string> {
  const token =
    args['admin-token'] ??
    process.env.ADMIN_TOKEN ??
    (await readFile('.iotflow/admin-token', 'utf8').catch(() => '')).trim()
  if (!token) fail('no admin token: pass --admin-token, set ADMIN_TOKEN, or run `npm start` first')
  return token
}

function positiveInteger(name: 'devices' | 'batch'): number {
  const value = Number(args[name])
  if (!Number.isInteger(value) || value < 1) fail(`--${name} must be a whole number of at least 1`)
  return value
}

function fail(message: string): never {
  console.error(message)
  process.exit(2)
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US')
}

function ms(value: number | undefined): string {
  return value === undefined ? '–' : `${value.toFixed(1)} ms`
}
