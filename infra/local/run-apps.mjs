// Local supervisor for `npm start` (no dependencies).
// Runs the gateway, both writers, the MQTT bridge and the alert evaluator with prefixed, coloured output, prints a
// banner once the gateway is healthy, and shuts everything down together:
// on SIGINT/SIGTERM, or as soon as one app exits on its own.
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const SHUTDOWN_DEADLINE_MS = 15_000
const HEALTH_TIMEOUT_MS = 60_000

const APPS = [
  { name: 'gateway', entry: 'dist/gateway/main.js', color: 36 },
  { name: 'writer-postgres', entry: 'dist/writer-postgres/main.js', color: 35 },
  { name: 'writer-influx', entry: 'dist/writer-influx/main.js', color: 33 },
  { name: 'mqtt-bridge', entry: 'dist/mqtt-bridge/main.js', color: 32 },
  { name: 'alert-evaluator', entry: 'dist/alert-evaluator/main.js', color: 34 },
]

const useColor = process.stdout.isTTY && !process.env.NO_COLOR
const paint = (code, text) => (useColor ? `\x1b[${code}m${text}\x1b[0m` : text)
const width = Math.max(...APPS.map((app) => app.name.length))
const say = (text) => console.log(`${paint(1, 'iotflow'.padEnd(width))} | ${text}`)

const children = new Map()
let stopping = false

checkPrerequisites()
writePidFile()
for (const app of APPS) start(app)
process.on('SIGINT', () => onSignal('SIGINT'))
process.on('SIGTERM', () => onSignal('SIGTERM'))
announceWhenHealthy()

function checkPrerequisites() {
  for (const app of APPS) {
    if (!existsSync(join(ROOT, app.entry))) fail(`missing ${app.entry}; run \`pnpm build\` first`)
  }
}

// Lets `npm stop` from another terminal stop the apps too.
function writePidFile() {
  const runDir = join(process.env.IOTFLOW_DATA_DIR ?? join(ROOT, '.iotflow'), 'run')
  mkdirSync(runDir, { recursive: true })
  const file = join(runDir, 'apps.pid')
  writeFileSync(file, `${process.pid}\n`)
  process.on('exit', () => {
    rmSync(file, { force: true })
    // Last resort: never leave detached apps behind.
    for (const child of children.values()) child.kill('SIGKILL')
  })
}

function start(app) {
  // detached: a terminal Ctrl+C reaches only this supervisor, so each app
  // gets exactly one SIGTERM and can drain gracefully.
  // The flags of APP_NODE_FLAGS (infra/build/build-apps.ts): this file runs without a TypeScript loader.
  const child = spawn(process.execPath, ['--enable-source-maps', '--max-old-space-size=1536', app.entry], {
    cwd: ROOT,
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  const prefix = `${paint(app.color, app.name.padEnd(width))} | `
  pipeLines(child.stdout, process.stdout, prefix)
  pipeLines(child.stderr, process.stderr, prefix)
  children.set(app.name, child)
  child.on('error', (err) => say(`${app.name}: failed to start: ${err.message}`))
  // 'close' rather than 'exit': the last output lines are flushed by then.
  child.on('close', (code, signal) => onChildExit(app.name, code, signal))
}

function pipeLines(input, output, prefix) {
  createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
    output.write(`${prefix}${line}\n`)
  })
}

function onChildExit(name, code, signal) {
  children.delete(name)
  const how = signal ? `signal ${signal}` : `code ${code}`
  if (stopping) {
    say(`${name} stopped (${how})`)
    return
  }
  say(paint(31, `${name} exited unexpectedly (${how}); stopping the others`))
  shutdown(code || 1)
}

function onSignal(signal) {
  if (stopping) {
    // Second Ctrl+C: do not wait for a graceful drain.
    say(`${signal} again, killing apps`)
    for (const child of children.values()) child.kill('SIGKILL')
    process.exit(130)
  }
  say(`${signal} received, stopping apps`)
  shutdown(0)
}

function shutdown(exitCode) {
  stopping = true
  if (children.size === 0) process.exit(exitCode)
  for (const child of children.values()) child.kill('SIGTERM')
  const timer = setTimeout(() => {
    say(`apps still running after ${SHUTDOWN_DEADLINE_MS / 1000} s, sending SIGKILL`)
    for (const child of children.values()) child.kill('SIGKILL')
  }, SHUTDOWN_DEADLINE_MS)
  timer.unref()
  const poll = setInterval(() => {
    if (children.size > 0) return
    clearInterval(poll)
    process.exit(exitCode)
  }, 100)
}

function fail(message) {
  console.error(`run-apps: ${message}`)
  process.exit(1)
}

async function announceWhenHealthy() {
  const host = ['0.0.0.0', '::', ''].includes(process.env.HOST ?? '') ? '127.0.0.1' : process.env.HOST
  const base = `http://${host.includes(':') ? `[${host}]` : host}:${process.env.PORT ?? '8080'}`
  const deadline = Date.now() + HEALTH_TIMEOUT_MS
  while (!stopping && Date.now() < deadline) {
    if (await isHealthy(`${base}/health`)) {
      printBanner(base)
      return
    }
    await new Promise((r) => setTimeout(r, 500))
  }
  if (!stopping) say(paint(31, `gateway not healthy at ${base}/health after ${HEALTH_TIMEOUT_MS / 1000} s`))
}

async function isHealthy(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
    return res.status === 200
  } catch {
    return false
  }
}

function printBanner(base) {
  const token = process.env.ADMIN_TOKEN ?? '<ADMIN_TOKEN>'
  const lines = [
    '',
    paint(1, 'IoTFlow is running'),
    `  Gateway      ${base}`,
    `  Swagger UI   ${base}/docs`,
    `  Health       ${base}/health/ready`,
    `  Admin token  ${token}`,
    '',
    '  Register a device (the response contains its API key):',
    `    curl -s -X POST ${base}/api/v1/devices \\`,
    `      -H 'Authorization: Bearer ${token}' \\`,
    `      -H 'Content-Type: application/json' -d '{"name":"my-sensor"}'`,
    '',
    '  Send telemetry with that key:',
    `    curl -s -X POST ${base}/api/v1/telemetry \\`,
    `      -H 'X-API-Key: <apiKey from the response above>' \\`,
    `      -H 'Content-Type: application/json' -d '{"data":{"temperature":21.5}}'`,
    '',
    '  Or over MQTT (QoS 1; the bridge acknowledges once the message is queued):',
    `    mosquitto_pub -L ${process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883'}/iotflow/devices/<id>/telemetry -q 1 \\`,
    `      -m '{"api_key":"<apiKey>","data":{"temperature":21.5}}'`,
    '',
    '  Ctrl+C stops the apps; `npm stop` also stops the services started for them.',
    '',
  ]
  console.log(lines.join('\n'))
}
