import {
  type DeviceColumns,
  dataAt,
  distinctMetadata,
  type FieldValue,
  forEachFieldAt,
  metadataAt,
  metadataIndexAt,
  NO_VALUE,
  typeAt,
} from '@iotflow/contracts'

/**
 * A device batch's columns, with its field names as JSON keys (`"name":`), made once per batch, and
 * the JSON of each of its distinct metadata objects, made when first needed: points sharing an
 * object (a line protocol series) share its text.
 */
interface ColumnSource {
  columns: DeviceColumns
  jsonKeys: string[]
  metadataJson: (string | undefined)[]
}

export interface TelemetryRow {
  device_id: number
  /** epoch ms; PostgreSQL turns it into a timestamptz (cheaper than an ISO string each way) */
  ms: number
  type: string | null
  /** Where the point's fields are: point `index` of `source`. */
  source: ColumnSource
  index: number
  /** The fields, once several writes of this point were merged into one row. */
  merged?: Record<string, FieldValue>
  /** Shared with other points of the batch: never modified (a merge makes a new object). */
  metadata: Record<string, unknown> | null
  /** Which of the source's distinct metadata objects `metadata` is; NO_VALUE when none or merged. */
  metadataIndex: number
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
export function dataJson(row: TelemetryRow): string {
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

/** The row's metadata as JSON text for the jsonb column (null: none), made once per distinct object. */
export function metadataJson(row: TelemetryRow): string | null {
  if (row.metadata === null) return null
  if (row.metadataIndex === NO_VALUE) return JSON.stringify(row.metadata)
  const cache = row.source.metadataJson
  let json = cache[row.metadataIndex]
  if (json === undefined) {
    json = JSON.stringify(row.metadata)
    cache[row.metadataIndex] = json
  }
  return json
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
    const source: ColumnSource = {
      columns,
      jsonKeys: columns.fields.map((name) => `${JSON.stringify(name)}:`),
      metadataJson: new Array(distinctMetadata(columns).length),
    }
    for (let index = 0; index < columns.t.length; index++) {
      rows.push({
        device_id: columns.device_id,
        ms: columns.t[index] as number,
        type: typeAt(columns, index) ?? null,
        source,
        index,
        metadata: metadataAt(columns, index) ?? null,
        metadataIndex: metadataIndexAt(columns, index),
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
      // The same object (two lines of one series at one time) merges into itself: nothing to do.
      if (row.metadata !== null && row.metadata !== previous.metadata) {
        const alone = previous.metadata === null
        previous.metadata = alone ? row.metadata : { ...previous.metadata, ...row.metadata }
        // The later point's own object when the earlier had none, its JSON cached by index when both
        // come from one batch; otherwise a new object (or another batch's), its JSON made for it.
        previous.metadataIndex = alone && previous.source === row.source ? row.metadataIndex : NO_VALUE
      }
      previous.received_ms = row.received_ms
    } else {
      rows[kept++] = row
    }
  }
  rows.length = kept
  return rows
}

export interface LatestRow {
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
export function daysOf(rows: TelemetryRow[]): string[] {
  const days = new Set<number>()
  for (const row of rows) days.add(Math.floor(row.ms / 86_400_000))
  return [...days].map((day) => new Date(day * 86_400_000).toISOString().slice(0, 10))
}
