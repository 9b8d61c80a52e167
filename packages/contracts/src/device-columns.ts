import { type Static, Type } from '@sinclair/typebox'
import { FieldValue, StoredPoint } from './telemetry.js'

/**
 * The W3C `traceparent` of each sampled request whose points a device batch carries (several when
 * group commit merged one device's requests): the writers link their batch write to each. Absent
 * when tracing is off or no request was sampled, so a job is then exactly what it was before.
 */
export const TraceParents = Type.Array(Type.String(), { minItems: 1 })

/**
 * One device's points, already validated and normalised, as one request or message brought them.
 * Producers build this; the queue carries it as columns (`DeviceColumns`).
 */
export const DeviceBatch = Type.Object({
  device_id: Type.Integer(),
  device_type: Type.Optional(Type.String()),
  received_at: Type.Integer({ description: 'epoch ms at the gateway or bridge' }),
  points: Type.Array(StoredPoint, { minItems: 1 }),
  traceparents: Type.Optional(TraceParents),
})
export type DeviceBatch = Static<typeof DeviceBatch>

/**
 * A point's metadata in a queued job: any JSON object, checked as an object without visiting its
 * members. `Type.Record` compiles to a check of every key against a pattern that accepts any key,
 * which, with line protocol metadata on every point, was most of what checking a job cost a consumer
 * (docs/benchmarks.md); the producers validated the metadata already.
 */
const MetadataObject = Type.Unsafe<Record<string, unknown>>(Type.Object({}, { additionalProperties: true }))

/**
 * One device's points as they travel through the queue: a column per field instead of an object per
 * point, so Redis and both writers carry and parse less per point (docs/benchmarks.md).
 * `values[j][i]` is field `fields[j]` of point `i`; `null` where that point has no such field (a
 * field's value is never null).
 */
export const DeviceColumns = Type.Object({
  device_id: Type.Integer(),
  device_type: Type.Optional(Type.String()),
  received_at: Type.Integer({ description: 'epoch ms at the gateway or bridge' }),
  /** Each point's time, epoch ms. */
  t: Type.Array(Type.Integer(), { minItems: 1 }),
  fields: Type.Array(Type.String()),
  values: Type.Array(Type.Array(Type.Union([FieldValue, Type.Null()]))),
  /** Each point's `type`; absent when no point has one. */
  type: Type.Optional(Type.Array(Type.Union([Type.String(), Type.Null()]))),
  /** Each point's `metadata`; absent when no point has any. */
  metadata: Type.Optional(Type.Array(Type.Union([MetadataObject, Type.Null()]))),
  traceparents: Type.Optional(TraceParents),
})
export type DeviceColumns = Static<typeof DeviceColumns>

/** The points of a device batch as columns (what the producers queue). */
export function toColumns(batch: DeviceBatch): DeviceColumns {
  const { points } = batch
  const count = points.length
  const t = new Array<number>(count)
  const fields: string[] = []
  const values: (FieldValue | null)[][] = []
  const columnOf = new Map<string, (FieldValue | null)[]>()
  let types: (string | null)[] | undefined
  let metadata: (Record<string, unknown> | null)[] | undefined
  for (let i = 0; i < count; i++) {
    const point = points[i] as StoredPoint
    t[i] = point.t
    for (const name in point.data) {
      let column = columnOf.get(name)
      if (column === undefined) {
        column = new Array<FieldValue | null>(count).fill(null)
        columnOf.set(name, column)
        fields.push(name)
        values.push(column)
      }
      column[i] = point.data[name] as FieldValue
    }
    if (point.type !== undefined) {
      types ??= new Array<string | null>(count).fill(null)
      types[i] = point.type
    }
    if (point.metadata !== undefined) {
      metadata ??= new Array<Record<string, unknown> | null>(count).fill(null)
      metadata[i] = point.metadata
    }
  }
  const columns: DeviceColumns = {
    device_id: batch.device_id,
    received_at: batch.received_at,
    t,
    fields,
    values,
  }
  if (batch.device_type !== undefined) columns.device_type = batch.device_type
  if (types) columns.type = types
  if (metadata) columns.metadata = metadata
  if (batch.traceparents) columns.traceparents = batch.traceparents
  return columns
}

/** The number of points of a queued device batch. */
export function pointCount(batch: DeviceColumns): number {
  return batch.t.length
}

/** Calls `visit` with each field point `i` has (its name and value), in column order. */
export function forEachFieldAt(
  columns: DeviceColumns,
  i: number,
  visit: (name: string, value: FieldValue) => void,
): void {
  for (let j = 0; j < columns.fields.length; j++) {
    const value = columns.values[j]?.[i]
    if (value !== null && value !== undefined) visit(columns.fields[j] as string, value)
  }
}

/** Point `i`'s fields as an object (for the rare paths that merge points). */
export function dataAt(columns: DeviceColumns, i: number): Record<string, FieldValue> {
  const data: Record<string, FieldValue> = {}
  forEachFieldAt(columns, i, (name, value) => {
    data[name] = value
  })
  return data
}
