/**
 * IoTFlow's PostgreSQL write path against the yardstick's direct INSERT, under the same load, in the
 * same run (issue 16): on a private PostgreSQL with pg_stat_statements (the shared server is never
 * reconfigured), each way of writing gets its own connection and writes the same kind of points in
 * turns, A B C … then … C B A, so that a drift of the machine touches every way alike.
 *
 *   pnpm bench:pg-write [--points 100000] [--batch 10000] [--rounds 2] [--shape json|lp] [--ways copy,insert,yardstick]
 *
 * Ways: `copy` and `insert` are the repository's two ways of writing points (packages/db,
 * `copyMinRows` 0 and Infinity), `writer` the two as the writer uses them (COPY from
 * COPY_MIN_ROWS rows), each with telemetry_latest in the same transaction (its share is its statement's
 * line in pg_stat_statements); `yardstick` is bench/yardstick's multi-row INSERT of
 * (device_id, time, data), one statement per 1,000-point request, as it writes; `copy-partition`
 * the points alone by COPY into their day's partition (no routing, no telemetry_latest). `--batch` is the
 * points of one write (the writer's WRITER_MAX_BATCH_POINTS, which a backlog fills); `--shape lp`
 * writes scenario 6's points (type, a `host` tag as metadata, `environment.*` field names).
 *
 * Prints, per 1,000 points: the backend's CPU (/proc/<pid>/stat), this process's CPU (encoding
 * the batch, postgres.js), WAL bytes (pg_current_wal_insert_lsn), statements, and each statement's
 * execution time and WAL from pg_stat_statements.
 */
import { readFileSync } from 'node:fs'
import { finished } from 'node:stream/promises'
import { parseArgs } from 'node:util'
import type { DeviceColumns } from '@iotflow/contracts'
import { COPY_MIN_ROWS, createTelemetryRepository, migrate } from '@iotflow/db'
import { startPrivatePostgres } from '@iotflow/testkit'
import postgres from 'postgres'
import { encodeTelemetryCopy, TELEMETRY_COPY_COLUMNS } from '../packages/db/src/telemetry-copy.js'
import { toTelemetryRows } from '../packages/db/src/telemetry-rows.js'
import { cpuSecondsOf } from './harness/proc-stats.js'

const { values: args } = parseArgs({
  options: {
    points: { type: 'string', default: '100000' },
    batch: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '2' },
    shape: { type: 'string', default: 'json' },
    ways: { type: 'string', default: 'copy,insert,yardstick' },
  },
})
const POINTS = Number(args.points)
const BATCH = Number(args.batch)
const ROUNDS = Number(args.rounds)
const SHAPE = args.shape === 'lp' ? 'lp' : 'json'
const REQUEST_POINTS = Math.min(1_000, BATCH)
const DEVICES = 50

type Write = (batches: DeviceColumns[]) => Promise<void>
const WAYS: Record<string, (sql: postgres.Sql) => Write> = {
  copy: (sql) => repositoryWrite(sql, 0),
  insert: (sql) => repositoryWrite(sql, Number.POSITIVE_INFINITY),
  // As the writer runs: COPY from COPY_MIN_ROWS rows, INSERT below.
  writer: (sql) => repositoryWrite(sql, COPY_MIN_ROWS),
  // The points alone, straight into their day's partition: what routing each row costs (issue 16).
  'copy-partition': (sql) => async (batches) => {
    const rows = toTelemetryRows(batches)
    await sql.begin(async (tx) => {
      const copy = await tx`
        COPY telemetry_p20261130 (${tx.unsafe(TELEMETRY_COPY_COLUMNS.join(', '))}) FROM STDIN (FORMAT binary)`.writable()
      copy.end(encodeTelemetryCopy(rows))
      await finished(copy)
    })
  },
  yardstick: (sql) => async (batches) => {
    for (const batch of batches) {
      const rows = batch.t.map((t, i) => ({
        device_id: batch.device_id,
        time: new Date(t),
        data: Object.fromEntries(batch.fields.map((name, j) => [name, batch.values[j]?.[i]])),
      }))
      await sql`INSERT INTO telemetry ${sql(rows, 'device_id', 'time', 'data')}`
    }
  },
}
const ways = (args.ways as string).split(',')
for (const way of ways) if (!WAYS[way]) throw new Error(`unknown way ${way}: ${Object.keys(WAYS).join(', ')}`)

function repositoryWrite(sql: postgres.Sql, copyMinRows: number): Write {
  const repository = createTelemetryRepository(sql, { copyMinRows })
  return async (batches) => {
    await repository.writeBatches(batches)
  }
}

/** A process's CPU time in ms (clock ticks of 10 ms). */
const processCpuMs = (pid: number) => cpuSecondsOf(readFileSync(`/proc/${pid}/stat`, 'utf8')) * 1000

/** Scenario 1's readings (or scenario 6's, as the line protocol mapping stores them), 1 ms apart per device. */
const clocks = new Array<number>(DEVICES).fill(Date.UTC(2026, 10, 30, 1))
function requestOf(device: number): DeviceColumns {
  const t: number[] = []
  const values: number[][] = [[], [], [], []]
  for (let i = 0; i < REQUEST_POINTS; i++) {
    const ms = (clocks[device] as number) + 1
    clocks[device] = ms
    t.push(ms)
    values[0]?.push(Math.round((18 + Math.random() * 8) * 100) / 100)
    values[1]?.push(Math.round((35 + Math.random() * 30) * 10) / 10)
    values[2]?.push(20 + Math.floor(Math.random() * 81))
    values[3]?.push(-95 + Math.floor(Math.random() * 51))
  }
  const names = ['temperature', 'humidity', 'battery', 'rssi']
  const columns: DeviceColumns = {
    device_id: device + 1,
    received_at: Date.now(),
    t,
    fields: SHAPE === 'lp' ? names.map((name) => `environment.${name}`) : names,
    values,
  }
  if (SHAPE === 'lp') {
    // As toColumns queues a line protocol request of one series: the type and tags once.
    columns.type = { values: ['environment'] }
    columns.metadata = { values: [{ host: 'edge-box' }] }
  }
  return columns
}

/** The writes of one turn: `--points` points in writes of `--batch`, each of 1,000-point requests. */
function writesOfTurn(): DeviceColumns[][] {
  const writes: DeviceColumns[][] = []
  let device = 0
  for (let written = 0; written < POINTS; written += BATCH) {
    const write: DeviceColumns[] = []
    for (let n = 0; n < BATCH; n += REQUEST_POINTS) write.push(requestOf(device++ % DEVICES))
    writes.push(write)
  }
  return writes
}

interface Totals {
  points: number
  backendMs: number
  clientMs: number
  walBytes: number
  statements: Map<string, { calls: number; ms: number; wal: number; rows: number }>
}

const pg = await startPrivatePostgres({
  // As the shared server runs (docs/benchmarks.md), plus the statement statistics.
  shared_buffers: '128MB',
  autovacuum: 'off',
  max_wal_size: '1GB',
  shared_preload_libraries: 'pg_stat_statements',
})
try {
  const admin = postgres(pg.url.replace(/\/iotflow$/, '/postgres'), { max: 1, onnotice: () => {} })
  await admin`CREATE DATABASE iotflow`
  await admin.end()
  await migrate(pg.url)
  const observer = postgres(pg.url, { max: 1, onnotice: () => {} })
  await observer`CREATE EXTENSION pg_stat_statements`
  await observer`SELECT telemetry_ensure_partition('2026-11-30')`

  const connections = new Map<string, { sql: postgres.Sql; pid: number; write: Write }>()
  const totals = new Map<string, Totals>()
  for (const way of ways) {
    const sql = postgres(pg.url, { max: 1, onnotice: () => {}, types: { bigint: postgres.BigInt } })
    const [backend] = await sql<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`
    const write = (WAYS[way] as (sql: postgres.Sql) => Write)(sql)
    for (const batches of writesOfTurn().slice(0, 2)) await write(batches) // warm up: plans, JIT, caches
    connections.set(way, { sql, pid: backend?.pid as number, write })
    totals.set(way, { points: 0, backendMs: 0, clientMs: 0, walBytes: 0, statements: new Map() })
  }

  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? ways : [...ways].reverse()
    for (const way of order) {
      const { pid, write } = connections.get(way) as { sql: postgres.Sql; pid: number; write: Write }
      const total = totals.get(way) as Totals
      const writes = writesOfTurn()
      await observer`SELECT pg_stat_statements_reset()`
      const [before] = await observer<{ lsn: string }[]>`SELECT pg_current_wal_insert_lsn()::text AS lsn`
      const backendBefore = processCpuMs(pid)
      const clientBefore = process.cpuUsage()
      for (const batches of writes) await write(batches)
      const client = process.cpuUsage(clientBefore)
      total.backendMs += processCpuMs(pid) - backendBefore
      total.clientMs += (client.user + client.system) / 1000
      const [wal] = await observer<{ bytes: string }[]>`
        SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), ${before?.lsn as string}::pg_lsn)::text AS bytes`
      total.walBytes += Number(wal?.bytes)
      total.points += writes.reduce((sum, batches) => sum + batches.reduce((n, b) => n + b.t.length, 0), 0)
      const statements = await observer<
        { query: string; calls: number; ms: number; wal: number; rows: number }[]
      >`
        SELECT query, calls::float8 AS calls, total_exec_time AS ms, wal_bytes::float8 AS wal, rows::float8 AS rows
        FROM pg_stat_statements
        WHERE query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%pg_current_wal%'`
      for (const s of statements) {
        const name = statementName(s.query)
        const seen = total.statements.get(name) ?? { calls: 0, ms: 0, wal: 0, rows: 0 }
        total.statements.set(name, {
          calls: seen.calls + s.calls,
          ms: seen.ms + s.ms,
          wal: seen.wal + s.wal,
          rows: seen.rows + s.rows,
        })
      }
    }
  }

  console.log(
    `\n${ROUNDS} rounds of ${POINTS.toLocaleString('en')} points per way, writes of ${BATCH.toLocaleString('en')} points, ` +
      `${SHAPE === 'lp' ? "scenario 6's" : "scenario 1's"} points; per 1,000 points:\n`,
  )
  console.log('| way | backend CPU ms | client CPU ms | WAL bytes | statements |')
  console.log('| --- | ---: | ---: | ---: | ---: |')
  for (const [way, t] of totals) {
    const per = 1000 / t.points
    const calls = [...t.statements.values()].reduce((sum, s) => sum + s.calls, 0)
    console.log(
      `| ${way} | ${(t.backendMs * per).toFixed(2)} | ${(t.clientMs * per).toFixed(2)} | ` +
        `${Math.round(t.walBytes * per).toLocaleString('en')} | ${(calls * per).toFixed(2)} |`,
    )
  }
  console.log('\npg_stat_statements, per 1,000 points: execution ms and WAL bytes of each statement\n')
  console.log('| way | statement | calls | exec ms | WAL bytes |')
  console.log('| --- | --- | ---: | ---: | ---: |')
  for (const [way, t] of totals) {
    const per = 1000 / t.points
    for (const [name, s] of [...t.statements].sort((a, b) => b[1].ms - a[1].ms))
      console.log(
        `| ${way} | ${name} | ${(s.calls * per).toFixed(2)} | ${(s.ms * per).toFixed(3)} | ${Math.round(s.wal * per).toLocaleString('en')} |`,
      )
  }
  for (const { sql } of connections.values()) await sql.end()
  await observer.end()
} finally {
  await pg.dispose()
}

/** A statement's first words (`INSERT INTO telemetry_latest`, `COPY telemetry`, `BEGIN`). */
function statementName(query: string): string {
  const words = query.replace(/\s+/g, ' ').trim().split(' ')
  if (/^(insert|copy)$/i.test(words[0] ?? '')) return words.slice(0, words[0] === 'COPY' ? 2 : 3).join(' ')
  return words.slice(0, 2).join(' ')
}
