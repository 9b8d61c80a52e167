// Local supervisor for `npm start` (no dependencies).
// Runs the gateway, both writers, the MQTT bridge and the alert evaluator with prefixed, coloured output, prints a
// banner once the gateway is healthy, restarts an app that exits on its own (with backoff, while
// the others keep serving), and stops everything together on SIGINT/SIGTERM (`npm stop`).
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const SHUTDOWN_DEADLINE_MS = 15_000
const HEALTH_TIMEOUT_MS = 60_000
// A crashed app is restarted after 1 s, then 2 s, 4 s … at most 30 s while it keeps crashing; once
// it has run this long, it counts as stable and its next crash starts from 1 s again.
const RESTART_FIRST_MS = 1_000
const RESTART_MAX_MS = 30_000
const STABLE_AFTER_MS = 60_000
// This many crashes in a row, each before the app ran stably, is a crash loop: said loudly, with
// the app's last lines, since they usually name the cause (a bad setting, a dependency refused).
const CRASH_LOOP_AFTER = 3
const LAST_LINES = 30

// Health ports of the writers and the bridge: each app reads HEALTH_PORT, so npm start hands each
// its own (defaults 9101-9103, as when each runs alone).
const APPS = [
  { name: 'gateway', entry: 'dist/gateway/main.js', color: 36 },
  {
    name: 'writer-postgres',
    entry: 'dist/writer-postgres/main.js',
    color: 35,
    healthPort: 'WRITER_POSTGRES_HEALTH_PORT',
  },
  {
    name: 'writer-influx',
    entry: 'dist/writer-influx/main.js',
    color: 33,
    healthPort: 'WRITER_INFLUX_HEALTH_PORT',
  },
  {
    name: 'mqtt-bridge',
    entry: 'dist/mqtt-bridge/main.js',
    color: 32,
    healthPort: 'MQTT_BRIDGE_HEALTH_PORT',
  },
  {
    name: 'alert-evaluator',
    entry: 'dist/alert-evaluator/main.js',
    color: 34,
    healthPort: 'ALERT_EVALUATOR_HEALTH_PORT',
  },
]

const useColor = process.stdout.isTTY && !process.env.NO_COLOR

/** The Redis the apps use, as the banner shows it (no password). */
function redisShown() {
  const env = process.env
  if (env.REDIS_SENTINELS) return `Sentinel ${env.REDIS_SENTINEL_NAME ?? '?'} via ${env.REDIS_SENTINELS}`
  if (env.REDIS_CLUSTER_NODES) return `Cluster via ${env.REDIS_CLUSTER_NODES}`
  const url = new URL(env.REDIS_URL ?? 'redis://127.0.0.1:6379')
  url.password = ''
  return url.toString()
}
const paint = (code, text) => (useColor ? `\x1b[${code}m${text}\x1b[0m` : text)
const width = Math.max(...APPS.map((app) => app.name.length))
const say = (text) => console.log(`${paint(1, 'iotflow'.padEnd(width))} | ${text}`)

/** Per app: its running child (if any), when it started, its pending restart, its crash streak, its last lines. */
const state = new Map(
  APPS.map((app) => [
    app.name,
    { child: undefined, startedAt: 0, restartTimer: undefined, crashes: 0, lines: [] },
  ]),
)
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
    for (const child of runningChildren()) child.kill('SIGKILL')
  })
}

function runningChildren() {
  return [...state.values()].flatMap((s) => (s.child ? [s.child] : []))
}

function start(app) {
  const own = state.get(app.name)
  own.restartTimer = undefined
  const env = { ...process.env }
  if (app.healthPort && process.env[app.healthPort]) env.HEALTH_PORT = process.env[app.healthPort]
  // detached: a terminal Ctrl+C reaches only this supervisor, so each app
  // gets exactly one SIGTERM and can drain gracefully.
  // The flags of APP_NODE_FLAGS (infra/build/build-apps.ts): this file runs without a TypeScript loader.
  const child = spawn(process.execPath, ['--enable-source-maps', '--max-old-space-size=1536', app.entry], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  own.child = child
  own.startedAt = Date.now()
  const prefix = `${paint(app.color, app.name.padEnd(width))} | `
  const keep = (line) => {
    own.lines.push(line)
    if (own.lines.length > LAST_LINES) own.lines.shift()
  }
  pipeLines(child.stdout, process.stdout, prefix, keep)
  pipeLines(child.stderr, process.stderr, prefix, keep)
  child.on('error', (err) => say(`${app.name}: failed to start: ${err.message}`))
  // 'close' rather than 'exit': the last output lines are flushed by then.
  child.on('close', (code, signal) => onChildExit(app, code, signal))
  if (child.pid) say(`${app.name} started (pid ${child.pid})`)
}

function pipeLines(input, output, prefix, keep) {
  createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
    keep(line)
    output.write(`${prefix}${line}\n`)
  })
}

function onChildExit(app, code, signal) {
  const own = state.get(app.name)
  own.child = undefined
  const how = signal ? `signal ${signal}` : `code ${code}`
  if (stopping) {
    say(`${app.name} stopped (${how})`)
    return
  }
  const ranMs = Date.now() - own.startedAt
  own.crashes = ranMs >= STABLE_AFTER_MS ? 1 : own.crashes + 1
  const delayMs = Math.min(RESTART_FIRST_MS * 2 ** (own.crashes - 1), RESTART_MAX_MS)
  say(
    paint(
      31,
      `${app.name} exited unexpectedly (${how}) after ${(ranMs / 1000).toFixed(1)} s; restarting in ${delayMs / 1000} s, the others keep running`,
    ),
  )
  if (own.crashes >= CRASH_LOOP_AFTER) {
    const headline = `${app.name} is crash-looping (${own.crashes} exits in a row, none ran ${STABLE_AFTER_MS / 1000} s); its last lines:`
    say([paint(31, headline), ...own.lines.map((line) => `    ${line}`)].join('\n'))
  }
  own.restartTimer = setTimeout(() => {
    if (!stopping) start(app)
  }, delayMs)
}

function onSignal(signal) {
  if (stopping) {
    // Second Ctrl+C: do not wait for a graceful drain.
    say(`${signal} again, killing apps`)
    for (const child of runningChildren()) child.kill('SIGKILL')
    process.exit(130)
  }
  say(`${signal} received, stopping apps`)
  shutdown(0)
}

function shutdown(exitCode) {
  stopping = true
  // No restart once stopping: a pending one is dropped.
  for (const own of state.values()) clearTimeout(own.restartTimer)
  if (runningChildren().length === 0) process.exit(exitCode)
  for (const child of runningChildren()) child.kill('SIGTERM')
  const timer = setTimeout(() => {
    say(`apps still running after ${SHUTDOWN_DEADLINE_MS / 1000} s, sending SIGKILL`)
    for (const child of runningChildren()) child.kill('SIGKILL')
  }, SHUTDOWN_DEADLINE_MS)
  timer.unref()
  const poll = setInterval(() => {
    if (runningChildren().length > 0) return
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
  const scheme = process.env.TLS_CERT_FILE ? 'https' : 'http'
  const base = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${process.env.PORT ?? '8080'}`
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
  const mqttUrl = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883'
  // TLS=1 npm start: clients trust the local CA (NODE_EXTRA_CA_CERTS, made by infra/tls/certs.sh).
  const ca = process.env.TLS_CERT_FILE ? process.env.NODE_EXTRA_CA_CERTS : undefined
  const curl = ca ? `curl -s --cacert ${ca}` : 'curl -s'
  const mosquittoCa =
    mqttUrl.startsWith('mqtts:') && process.env.MQTT_CA_FILE ? ` --cafile ${process.env.MQTT_CA_FILE}` : ''
  const lines = [
    '',
    paint(1, 'IoTFlow is running'),
    `  Gateway      ${base}`,
    `  Swagger UI   ${base}/docs`,
    `  Health       ${base}/health/ready`,
    `  Admin token  ${token}`,
    `  Redis        ${redisShown()} (the queues)`,
    `  MQTT broker  ${mqttUrl}`,
    ...(ca ? [`  TLS CA       ${ca} (trust it in clients: curl --cacert, mosquitto_pub --cafile)`] : []),
    '',
    '  Register a device (the response contains its API key):',
    `    ${curl} -X POST ${base}/api/v1/devices \\`,
    `      -H 'Authorization: Bearer ${token}' \\`,
    `      -H 'Content-Type: application/json' -d '{"name":"my-sensor"}'`,
    '',
    '  Send telemetry with that key:',
    `    ${curl} -X POST ${base}/api/v1/telemetry \\`,
    `      -H 'X-API-Key: <apiKey from the response above>' \\`,
    `      -H 'Content-Type: application/json' -d '{"data":{"temperature":21.5}}'`,
    '',
    '  Or over MQTT (QoS 1; the bridge acknowledges once the message is queued):',
    `    mosquitto_pub -L ${mqttUrl}/iotflow/devices/<id>/telemetry${mosquittoCa} -q 1 \\`,
    `      -m '{"api_key":"<apiKey>","data":{"temperature":21.5}}'`,
    '',
    '  Ctrl+C stops the apps; `npm stop` also stops the services started for them.',
    '  An app that exits on its own is restarted (after 1 s, doubling to 30 s while it keeps crashing).',
    '',
  ]
  console.log(lines.join('\n'))
}
