import { type DeviceColumns, dataAt, type FieldValue, forEachFieldAt } from '@iotflow/contracts'
import type postgres from 'postgres'
import type { Sql } from './client.js'

/** A device batch's columns, with its field names as JSON keys (`"name":`), made once per batch. */
interface ColumnSource {
  columns: DeviceColumns
  jsonKeys: string[]
}

interface TelemetryRow {
  device_id: number
  /** epoch ms; PostgreSQL turns it into a timestamptz (cheaper than an ISO string each way) */
  ms: number
  type: string | null
  /** Where the point's fields are: point `index` of `source`. */
  source: ColumnSource
  index: number
  /** The fields, once several writes of this point were merged into one row. */
  merged?: Record<string, FieldValue>
  metadata: Record<string, unknown> | null
  received_ms: number
}

const byDeviceAndTime = (a: TelemetryRow, b: TelemetryRow) => a.device_id - b.device_id || a.ms - b.ms

/** A row's fields as an object (only for merging). */
const dataOf = (row: TelemetryRow) => row.merged ?? dataAt(row.source.columns, row.index)

/** Calls `visit` with each field of the row that has a value. */
function forEachField(row: TelemetryRow, visit: (name: string, value: FieldValue) => void) {
  if (!row.merged) return forEachFieldAt(row.source.columns, row.index, visit)
  for (const name in row.merged) visit(name, row.merged[name] as FieldValue)
}

/** The row's fields as JSON text for the jsonb column, written from the columns without an object. */
function dataJson(row: TelemetryRow): string {
  if (row.merged) return JSON.stringify(row.merged)
  const { columns, jsonKeys } = row.source
  let json = ''
  for (let j = 0; j < jsonKeys.length; j++) {
    const value = (columns.values[j] as (FieldValue | null)[])[row.index]
    if (value === null || value === undefined) continue
    json += `${json ? ',' : '{'}${jsonKeys[j]}${typeof value === 'string' ? JSON.stringify(value) : String(value)}`
  }
  return json ? `${json}}` : '{}'
}

/**
 * Collapses a set of batches into one row per (device, timestamp), fields and metadata merged with
 * the later value of a name winning (as InfluxDB treats a duplicate point), sorted so concurrent upserts lock rows in
 * the same order and cannot deadlock. The sort is stable, so "later" is the order given; points
 * usually arrive in time order, which the sort passes through in one scan.
 */
export function toTelemetryRows(batches: DeviceColumns[]): TelemetryRow[] {
  const rows: TelemetryRow[] = []
  for (const columns of batches) {
    const source = { columns, jsonKeys: columns.fields.map((name) => `${JSON.stringify(name)}:`) }
    for (let index = 0; index < columns.t.length; index++) {
      rows.push({
        device_id: columns.device_id,
        ms: columns.t[index] as number,
        type: columns.type?.[index] ?? null,
        source,
        index,
        metadata: columns.metadata?.[index] ?? null,
        received_ms: columns.received_at,
      })
    }
  }
  rows.sort(byDeviceAndTime)
  let kept = 0
  for (const row of rows) {
    const previous = kept > 0 ? rows[kept - 1] : undefined
    if (previous && previous.device_id === row.device_id && previous.ms === row.ms) {
      previous.merged = { ...dataOf(previous), ...dataOf(row) }
      if (row.type !== null) previous.type = row.type
      if (row.metadata !== null)
        previous.metadata =
          previous.metadata === null ? row.metadata : { ...previous.metadata, ...row.metadata }
      previous.received_ms = row.received_ms
    } else {
      rows[kept++] = row
    }
  }
  rows.length = kept
  return rows
}

interface LatestRow {
  device_id: number
  field: string
  ms: number
  value: FieldValue
}

/**
 * The newest value of each (device, field) among the rows (sorted by device, then time), sorted by
 * device and field so that concurrent upserts lock in the same order.
 */
export function latestOf(rows: TelemetryRow[]): LatestRow[] {
  const latest: LatestRow[] = []
  let newest = new Map<string, { ms: number; value: FieldValue }>()
  let device: number | undefined
  const collect = () => {
    for (const field of [...newest.keys()].sort()) {
      const { ms, value } = newest.get(field) as { ms: number; value: FieldValue }
      latest.push({ device_id: device as number, field, ms, value })
    }
  }
  for (const row of rows) {
    if (row.device_id !== device) {
      collect()
      newest = new Map()
      device = row.device_id
    }
    forEachField(row, (field, value) => newest.set(field, { ms: row.ms, value }))
  }
  collect()
  return latest
}

/** UTC days (as YYYY-MM-DD) that the rows fall in. */
function daysOf(rows: TelemetryRow[]): string[] {
  const days = new Set<number>()
  for (const row of rows) days.add(Math.floor(row.ms / 86_400_000))
  return [...days].map((day) => new Date(day * 86_400_000).toISOString().slice(0, 10))
}

const RECORD_SEPARATOR = '\u001e'
const UNIQUE_VIOLATION = '23505'

export function createTelemetryRepository(sql: Sql) {
  const knownPartitions = new Set<string>()

  async function ensurePartitions(rows: TelemetryRow[]) {
    const missing = daysOf(rows).filter((day) => !knownPartitions.has(day))
    if (missing.length === 0) return
    await sql`SELECT telemetry_ensure_partition(day) FROM unnest(${missing}::date[]) AS day`
    for (const day of missing) knownPartitions.add(day)
  }

  /**
   * Stores the rows: a plain INSERT first, and only if a point is already there (a redelivered job,
   * a device sending a time twice) the same rows again as an upsert that merges their fields, in one
   * transaction. An upsert costs PostgreSQL CPU on every row even when nothing conflicts, which is
   * almost always (docs/benchmarks.md).
   */
  async function store(rows: TelemetryRow[]) {
    try {
      await storeAs('insert', rows)
    } catch (error) {
      if ((error as { code?: string }).code !== UNIQUE_VIOLATION) throw error
      await storeAs('upsert', rows)
    }
  }

  async function storeAs(mode: 'insert' | 'upsert', rows: TelemetryRow[]) {
    // The points and the latest values commit together; sorted rows keep lock order deadlock-free.
    await sql.begin(async (tx) => {
      await writePoints(tx, rows, mode)
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
        ${textColumn(rows.map((r) => (r.metadata === null ? null : JSON.stringify(r.metadata))))},
        ${integerColumn(rows.map((r) => r.received_ms))}::bigint[]
      ) AS x(device_id, ms, type, data, metadata, received_ms)
      ${mode === 'upsert' ? mergeOnConflict() : sql``}`
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
