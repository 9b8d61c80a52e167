import { spawn } from 'node:child_process'
import type { Teardown } from './teardown.js'

export interface LatencySummary {
  count: number
  p50?: number
  p99?: number
  max?: number
}

/** What a load generator prints: wrk-telemetry.lua's done(), or node-load.ts. */
export interface LoadReport {
  duration_ms: number
  requests: number
  errors: { connect: number; read: number; write: number; status: number; timeout: number }
  statuses: Record<string, number>
  latency_ms: { p50: number; p99: number; max: number }
  exact: boolean
  by_status_ms?: { accepted: LatencySummary; refused: LatencySummary; other: LatencySummary }
  /**
   * Open loop (node-load.ts): the answers to the requests due in the warm-up of `seconds` that ran
   * before the measured window, at the same rate; not in `latency_ms` nor `by_status_ms`.
   */
  warm_up_ms?: LatencySummary & { seconds: number }
  first_refusal_epoch_ms?: number
  /** Requests not sent because the prepared line protocol bodies ran out. */
  bodies_exhausted: number
  cpu_seconds: number
}

/**
 * Runs a load generator (wrk, or the Node client) to its end and returns the report it prints as
 * one line "BENCH_RESULT {json}"; killed by the teardown if the bench stops first.
 */
export async function runLoadProcess(
  name: string,
  command: string,
  args: string[],
  env: Record<string, string>,
  teardown: Teardown,
): Promise<LoadReport> {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  teardown.add(name, child, async (load) => {
    if (load.exitCode === null && load.signalCode === null) load.kill('SIGKILL')
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
  if (!line) throw new Error(`${name} exited with ${code} and no result:\n${output}`)
  return JSON.parse(line.slice('BENCH_RESULT '.length)) as LoadReport
}
