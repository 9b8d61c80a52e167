import { fileURLToPath } from 'node:url'
import { runLoadProcess } from './load-process.js'
import type { Teardown } from './teardown.js'
import type { WrkLoad, WrkReport } from './wrk.js'

const MAIN = fileURLToPath(new URL('./node-load.ts', import.meta.url))

export interface NodeLoad extends Omit<WrkLoad, 'exact' | 'bodies'> {
  /** Requests a second on a fixed schedule (open loop); unset: `connections` clients in a closed loop. */
  rate?: number
}

/** Runs node-load.ts, the Node HTTP client, for `seconds`; its report has wrk's shape. */
export function runNodeLoad(load: NodeLoad, teardown: Teardown): Promise<WrkReport> {
  return runLoadProcess(
    'the Node load generator',
    process.execPath,
    ['--import', 'tsx', MAIN],
    {
      BENCH_URL: load.url,
      BENCH_DEVICES_FILE: load.devicesFile,
      BENCH_CONNECTIONS: String(load.connections),
      BENCH_POINTS: String(load.pointsPerRequest),
      BENCH_FIRST_TIMESTAMP_MS: String(load.firstTimestampMs),
      BENCH_SECONDS: String(load.seconds),
      ...(load.rate === undefined ? {} : { BENCH_RATE: String(load.rate) }),
    },
    teardown,
  )
}
