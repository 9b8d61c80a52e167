import { execFile, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { LineProtocolBodies } from './line-protocol-bodies.js'
import type { Teardown } from './teardown.js'

const run = promisify(execFile)
const SCRIPT = fileURLToPath(new URL('./wrk-telemetry.lua', import.meta.url))

/**
 * wrk (C, epoll, LuaJIT) is the HTTP load generator of every HTTP scenario, for IoTFlow and the
 * yardstick alike: on two shared cores a load generator in Node would take the CPU it measures.
 * Missing, it is installed with apt when we are root (as infra/local does); otherwise we say how.
 */
export async function ensureWrk(): Promise<void> {
  if (await found()) return
  if (process.getuid?.() !== 0) {
    throw new Error('wrk is not installed: run `sudo apt-get install -y wrk`, then this command again')
  }
  console.log('apt: installing wrk')
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const install = () => run('apt-get', ['install', '-y', '--no-install-recommends', 'wrk'], { env })
  // Fresh machines often have no package lists yet: retry after an update.
  await install().catch(async () => {
    await run('apt-get', ['update'], { env })
    await install()
  })
  if (!(await found())) throw new Error('apt-get install wrk did not install wrk')
}

const found = () =>
  run('wrk', ['--version']).then(
    () => true,
    // wrk --version prints its usage and exits 1: installed all the same.
    (error: { code?: unknown }) => error.code !== 'ENOENT',
  )

export interface WrkLoad {
  url: string
  devicesFile: string
  connections: number
  /** One connection per thread gives exact per-status latency and Retry-After (more CPU per request). */
  exact: boolean
  pointsPerRequest: number
  firstTimestampMs: number
  seconds: number
  /** Send these gzipped line protocol bodies instead of JSON built per request. */
  bodies?: LineProtocolBodies
}

export interface LatencySummary {
  count: number
  p50?: number
  p99?: number
  max?: number
}

/** What wrk-telemetry.lua's done() prints. */
export interface WrkReport {
  duration_ms: number
  requests: number
  errors: { connect: number; read: number; write: number; status: number; timeout: number }
  statuses: Record<string, number>
  latency_ms: { p50: number; p99: number; max: number }
  exact: boolean
  by_status_ms?: { accepted: LatencySummary; refused: LatencySummary; other: LatencySummary }
  first_refusal_epoch_ms?: number
  /** Requests not sent because the prepared line protocol bodies ran out. */
  bodies_exhausted: number
  cpu_seconds: number
}

/** Runs wrk for `seconds` and returns its report (its CPU time included: it reads its own). */
export async function runWrk(load: WrkLoad, teardown: Teardown): Promise<WrkReport> {
  const threads = load.exact ? load.connections : Math.min(2, load.connections)
  const child = spawn(
    'wrk',
    [
      `-t${threads}`,
      `-c${load.connections}`,
      `-d${load.seconds}s`,
      // Past this wrk counts a timeout: long enough that a slow answer is measured, not dropped.
      '--timeout',
      '30s',
      '-s',
      SCRIPT,
      load.url,
    ],
    {
      env: {
        ...process.env,
        BENCH_DEVICES_FILE: load.devicesFile,
        BENCH_THREADS: String(threads),
        BENCH_POINTS: String(load.pointsPerRequest),
        BENCH_FIRST_TIMESTAMP_MS: String(load.firstTimestampMs),
        BENCH_EXACT: load.exact ? '1' : '0',
        ...(load.bodies
          ? { BENCH_BODIES_DIR: load.bodies.dir, BENCH_BODIES: String(load.bodies.count) }
          : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  teardown.add('wrk', child, async (wrk) => {
    if (wrk.exitCode === null && wrk.signalCode === null) wrk.kill('SIGKILL')
  })
  let output = ''
  child.stdout.on('data', (chunk) => {
    output += chunk
  })
  child.stderr.on('data', (chunk) => {
    output += chunk
  })
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', resolve)
  })
  const line = output.split('\n').find((l) => l.startsWith('BENCH_RESULT '))
  if (!line) throw new Error(`wrk exited with ${code} and no result:\n${output}`)
  return JSON.parse(line.slice('BENCH_RESULT '.length)) as WrkReport
}
