import { finished } from 'node:stream/promises'
import type { DeviceColumns } from '@iotflow/contracts'
import type postgres from 'postgres'
import type { Sql } from './client.js'
import { encodeTelemetryCopy, TELEMETRY_COPY_COLUMNS } from './telemetry-copy.js'
import {
  dataJson,
  daysOf,
  type LatestRow,
  latestOf,
  metadataJson,
  type TelemetryRow,
  toTelemetryRows,
} from './telemetry-rows.js'

const RECORD_SEPARATOR = '\u001e'
const UNIQUE_VIOLATION = '23505'

/**
 * Batches of at least this many rows go in by COPY, smaller ones by INSERT: a COPY costs PostgreSQL
 * and the writer more to set up than a statement, and less per row (docs/benchmarks.md).
 */
export const COPY_MIN_ROWS = 3_000

export interface TelemetryRepositoryOptions {
  /** Rows from which a batch is COPYed (0: always, Infinity: never); bench/pg-write-path.ts sets it. */
  copyMinRows?: number
}

export function createTelemetryRepository(sql: Sql, options: TelemetryRepositoryOptions = {}) {
  const copyMinRows = options.copyMinRows ?? COPY_MIN_ROWS
  const knownPartitions = new Set<string>()

  async function ensurePartitions(rows: TelemetryRow[]) {
    const missing = daysOf(rows).filter((day) => !knownPartitions.has(day))
    if (missing.length === 0) return
    await sql`SELECT telemetry_ensure_partition(day) FROM unnest(${missing}::date[]) AS day`
    for (const day of missing) knownPartitions.add(day)
  }

  /**
   * Stores the rows: a plain COPY (or INSERT) first, and only if a point is already there (a
   * redelivered job, a device sending a time twice) the same rows again as an upsert that merges
   * their fields, in one transaction. An upsert costs PostgreSQL CPU on every row even when nothing
   * conflicts, which is almost always (docs/benchmarks.md).
   */
  async function store(rows: TelemetryRow[]) {
    try {
      await storeAs(rows.length >= copyMinRows ? 'copy' : 'insert', rows)
    } catch (error) {
      if ((error as { code?: string }).code !== UNIQUE_VIOLATION) throw error
      await storeAs('upsert', rows)
    }
  }

  async function storeAs(mode: 'copy' | 'insert' | 'upsert', rows: TelemetryRow[]) {
    // The points and the latest values commit together; sorted rows keep lock order deadlock-free.
    await sql.begin(async (tx) => {
      if (mode === 'copy') await copyPoints(tx, rows)
      else await writePoints(tx, rows, mode)
      await upsertLatest(tx, latestOf(rows))
    })
  }

  async function upsertLatest(tx: postgres.TransactionSql, latest: LatestRow[]) {
    await tx`
      INSERT INTO telemetry_latest AS l (device_id, field, time, value)
      SELECT device_id, field, timestamptz 'epoch' + ms * interval '1 millisecond', value::jsonb
      FROM unnest(
        ${integerColumn(latest.map((l) => l.device_id))}::int[],
        ${textColumn(latest.map((l) => l.field))},
        ${integerColumn(latest.map((l) => l.ms))}::bigint[],
        ${textColumn(latest.map((l) => JSON.stringify(l.value)))}
      ) AS x(device_id, field, ms, value)
      ON CONFLICT (device_id, field) DO UPDATE SET time = EXCLUDED.time, value = EXCLUDED.value
        WHERE EXCLUDED.time >= l.time`
  }

  async function writePoints(tx: postgres.TransactionSql, rows: TelemetryRow[], mode: 'insert' | 'upsert') {
    // One statement, one round trip: the batch travels as one text per column, which PostgreSQL
    // takes apart more cheaply than one JSON document (docs/benchmarks.md).
    await tx`
      INSERT INTO telemetry AS t (device_id, time, type, data, metadata, received_at)
      SELECT device_id, timestamptz 'epoch' + ms * interval '1 millisecond', type, data::jsonb,
             metadata::jsonb, timestamptz 'epoch' + received_ms * interval '1 millisecond'
      FROM unnest(
        ${integerColumn(rows.map((r) => r.device_id))}::int[],
        ${integerColumn(rows.map((r) => r.ms))}::bigint[],
        ${textColumn(rows.map((r) => r.type))},
        ${textColumn(rows.map(dataJson))},
        ${textColumn(rows.map(metadataJson))},
        ${integerColumn(rows.map((r) => r.received_ms))}::bigint[]
      ) AS x(device_id, ms, type, data, metadata, received_ms)
      ${mode === 'upsert' ? mergeOnConflict() : sql``}`
  }

  /**
   * The rows as one binary COPY into the partitioned table: no statement for PostgreSQL to plan, no
   * text to split or cast, and rows inserted in multi-row batches (less CPU and WAL per row). Like
   * the plain INSERT, it fails with a unique violation when a point is already stored.
   */
  async function copyPoints(tx: postgres.TransactionSql, rows: TelemetryRow[]) {
    const copy = await tx`
      COPY telemetry (${sql.unsafe(TELEMETRY_COPY_COLUMNS.join(', '))}) FROM STDIN (FORMAT binary)`.writable()
    copy.end(encodeTelemetryCopy(rows))
    // Settles with the server's answer: a refused COPY (say a unique violation) rejects it, which
    // takes a patched postgres.js (patches/postgres@3.4.9.patch: 3.4.9 never settled it).
    await finished(copy)
  }

  // A point already stored gets the new fields and metadata merged in (the later value of a name
  // winning, as InfluxDB does), and the later type; a row that would not change is not rewritten.
  // (jsonb || NULL is NULL, hence the COALESCE.)
  const mergeOnConflict = () => sql`
    ON CONFLICT (device_id, time) DO UPDATE
      SET data = t.data || EXCLUDED.data,
          type = COALESCE(EXCLUDED.type, t.type),
          metadata = COALESCE(t.metadata || EXCLUDED.metadata, EXCLUDED.metadata, t.metadata),
          received_at = EXCLUDED.received_at
      WHERE t.data IS DISTINCT FROM t.data || EXCLUDED.data
         OR t.type IS DISTINCT FROM COALESCE(EXCLUDED.type, t.type)
         OR t.metadata IS DISTINCT FROM COALESCE(t.metadata || EXCLUDED.metadata, EXCLUDED.metadata, t.metadata)`

  // Every column travels as ONE text parameter that SQL splits, not as an array parameter, which
  // postgres.js would build and escape element by element (docs/benchmarks.md). The separators never
  // occur inside a value (see each).

  /**
   * Texts joined by the ASCII record separator: JSON text never holds it raw (JSON.stringify
   * escapes every control character), nor do field names and tag values (names.ts refuses control
   * characters). `null` travels as '' (none of these texts is ever empty) and comes back NULL.
   */
  function textColumn(values: (string | null)[]) {
    // A column of nulls (no point has a type or metadata, the usual case) is an empty array, which
    // unnest pads with nulls: nothing for PostgreSQL to split.
    if (values.every((value) => value === null)) return sql`'{}'::text[]`
    return sql`string_to_array(${values.join(RECORD_SEPARATOR)}::text, chr(30), '')`
  }

  /** Integers (ids, epoch ms) joined by commas; cast to the column's type by the caller. */
  function integerColumn(values: number[]) {
    return sql`string_to_array(${values.join(',')}::text, ',')`
  }

  return {
    /** Stores the batches idempotently on (device, timestamp); resolves once committed. */
    async writeBatches(batches: DeviceColumns[]): Promise<number> {
      const rows = toTelemetryRows(batches)
      if (rows.length === 0) return 0
      await ensurePartitions(rows)
      try {
        await store(rows)
      } catch (error) {
        // A partition we thought existed was dropped (retention): forget what we know and retry once.
        if ((error as { code?: string }).code !== '23514') throw error
        knownPartitions.clear()
        await ensurePartitions(rows)
        await store(rows)
      }
      return rows.length
    },
  }
}

export type TelemetryRepository = ReturnType<typeof createTelemetryRepository>
