import { maintenanceUrl } from '@iotflow/testkit'
import postgres from 'postgres'
import { machineBusySeconds } from './proc-stats.js'

const QUIET_BUSY_FRACTION = 0.15 // of the whole machine (all cores)
const QUIET_WINDOW_MS = 2_000
const MAX_WAIT_MS = 60_000

/**
 * Lets the machine settle before a scenario: what the last one left behind (PostgreSQL's dirty
 * buffers and the WAL of millions of rows, its dropped databases, InfluxDB's compactions) otherwise
 * runs during the next one and takes its CPU. A CHECKPOINT writes PostgreSQL's out now; then it waits
 * until the machine has been nearly idle (under 15% busy) for 2 s, at most 60 s. Returns what it saw.
 */
export async function settleMachine(cores: number): Promise<{ waitedMs: number; busy: number }> {
  const started = Date.now()
  // CHECKPOINT is server-wide: the maintenance database is there even before `npm start` made ours.
  const sql = postgres(maintenanceUrl(), { max: 1, onnotice: () => {} })
  try {
    await sql`CHECKPOINT`
  } finally {
    await sql.end({ timeout: 5 })
  }
  let busy = 1
  while (Date.now() - started < MAX_WAIT_MS) {
    const before = await machineBusySeconds()
    await new Promise((resolve) => setTimeout(resolve, QUIET_WINDOW_MS))
    busy = (await machineBusySeconds()) - before
    busy /= (QUIET_WINDOW_MS / 1000) * cores
    if (busy < QUIET_BUSY_FRACTION) break
  }
  return { waitedMs: Date.now() - started, busy }
}
