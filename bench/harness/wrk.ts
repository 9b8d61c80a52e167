import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { LineProtocolBodies } from './line-protocol-bodies.js'
import { type LoadReport, runLoadProcess } from './load-process.js'
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

/** What wrk-telemetry.lua's done() prints. */
export type WrkReport = LoadReport

/** Runs wrk for `seconds` and returns its report (its CPU time included: it reads its own). */
export async function runWrk(load: WrkLoad, teardown: Teardown): Promise<WrkReport> {
  const threads = load.exact ? load.connections : Math.min(2, load.connections)
  return runLoadProcess(
    'wrk',
    'wrk',
    [
      `-t${threads}`,
      `-c${load.connections}`,
      `-d${load.seconds}s`,
      '--timeout',
      '30s',
      '-s',
      SCRIPT,
      load.url,
    ],
    {
      BENCH_DEVICES_FILE: load.devicesFile,
      BENCH_THREADS: String(threads),
      BENCH_POINTS: String(load.pointsPerRequest),
      BENCH_FIRST_TIMESTAMP_MS: String(load.firstTimestampMs),
      BENCH_EXACT: load.exact ? '1' : '0',
      ...(load.bodies ? { BENCH_BODIES_DIR: load.bodies.dir, BENCH_BODIES: String(load.bodies.count) } : {}),
    },
    teardown,
  )
}
