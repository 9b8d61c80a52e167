import { type Static, Type } from '@sinclair/typebox'
import {
  type DictionaryColumn,
  DictionaryColumnBuilder,
  DictionaryColumnOf,
  dictionaryIndexAt,
  dictionaryValueAt,
} from './dictionary-column.js'
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
export const MetadataObject = Type.Unsafe<Record<string, unknown>>(
  Type.Object({}, { additionalProperties: true }),
)

/**
 * One device's points as they travel through the queue: a column per field instead of an object per
 * point, so Redis and both writers carry and parse less per point (docs/benchmarks.md).
 * `values[j][i]` is field `fields[j]` of point `i`; `null` where that point has no such field (a
 * field's value is never null). `type` and `metadata` are dictionaries (dictionary-column.ts): the
 * points of a line protocol series share them, so each distinct one travels once. Read them with
 * `typeAt` and `metadataAt`, never by indexing.
 */
export const DeviceColumns = Type.Object({
  device_id: Type.Integer(),
  device_type: Type.Optional(Type.String()),
  received_at: Type.Integer({ description: 'epoch ms at the gateway or bridge' }),
  /** Each point's time, epoch ms. */
  t: Type.Array(Type.Integer(), { minItems: 1 }),
  fields: Type.Array(Type.String()),
  values: Type.Array(Type.Array(Type.Union([FieldValue, Type.Null()]))),
  /** The points' `type`s; absent when no point has one. */
  type: Type.Optional(DictionaryColumnOf(Type.String())),
  /** The points' `metadata` objects; absent when no point has any. */
  metadata: Type.Optional(DictionaryColumnOf(MetadataObject)),
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
  const types = new DictionaryColumnBuilder<string>(count)
  const metadata = new DictionaryColumnBuilder<Record<string, unknown>>(count)
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
    if (point.type !== undefined) types.set(i, point.type)
    // By reference: the points of a line protocol series share one metadata object.
    if (point.metadata !== undefined) metadata.set(i, point.metadata)
  }
  const columns: DeviceColumns = {
    device_id: batch.device_id,
    received_at: batch.received_at,
    t,
    fields,
    values,
  }
  if (batch.device_type !== undefined) columns.device_type = batch.device_type
  const type = types.build()
  if (type) columns.type = type
  const metadataColumn = metadata.build()
  if (metadataColumn) columns.metadata = metadataColumn
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

/** Point `i`'s `type`; undefined when it has none. */
export function typeAt(columns: DeviceColumns, i: number): string | undefined {
  return dictionaryValueAt(columns.type, i)
}

/** Point `i`'s `metadata`; undefined when it has none. Points may share one object: never modify it. */
export function metadataAt(columns: DeviceColumns, i: number): Record<string, unknown> | undefined {
  return dictionaryValueAt(columns.metadata, i)
}

/**
 * Which of the batch's distinct metadata objects point `i` has (an index into `distinctMetadata`),
 * or NO_VALUE (none): for work done once per distinct object, such as its JSON.
 */
export function metadataIndexAt(columns: DeviceColumns, i: number): number {
  return dictionaryIndexAt(columns.metadata, i)
}

/** The batch's distinct metadata objects. */
export function distinctMetadata(columns: DeviceColumns): readonly Record<string, unknown>[] {
  return columns.metadata?.values ?? []
}

/**
 * What makes a device batch that matches its schema unusable: a dictionary whose indexes are not one
 * per point or point beyond its values (the schema cannot say so). Undefined when usable.
 */
export function deviceColumnsProblem(columns: DeviceColumns): string | undefined {
  const count = columns.t.length
  for (const name of ['type', 'metadata'] as const) {
    const problem = dictionaryProblem(columns[name], count)
    if (problem) return `${name}/${problem}`
  }
  return undefined
}

function dictionaryProblem(column: DictionaryColumn<unknown> | undefined, count: number): string | undefined {
  const at = column?.at
  if (column === undefined || at === undefined) return undefined
  if (at.length !== count) return 'at: not one index per point'
  const size = column.values.length
  for (let i = 0; i < count; i++) if ((at[i] as number) >= size) return `at/${i}: beyond the values`
  return undefined
}
