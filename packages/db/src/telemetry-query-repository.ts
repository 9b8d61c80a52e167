import type { Aggregation } from '@iotflow/contracts'
import type { Sql } from './client.js'

export interface RawPoint {
  time: Date
  type: string | null
  data: Record<string, unknown>
}

export interface Bucket {
  bucket: Date
  value: unknown
}

/** Reads of the telemetry of one device. Every query is bounded by the (device_id, time) key. */
export function createTelemetryQueryRepository(sql: Sql) {
  return {
    /** Newest first; `before` (exclusive) continues a previous page. Only points holding one of `fields`. */
    async raw(
      deviceId: number,
      range: { startMs: number; endMs: number; before?: Date },
      limit: number,
      fields?: string[],
    ) {
      const end = range.before && range.before.getTime() < range.endMs ? range.before : new Date(range.endMs)
      return sql<RawPoint[]>`
        SELECT time, type, data FROM telemetry
        WHERE device_id = ${deviceId} AND time >= ${new Date(range.startMs)} AND time < ${end}
          ${fields ? sql`AND data ?| ${fields}::text[]` : sql``}
        ORDER BY time DESC
        LIMIT ${limit}`
    },

    async latest(deviceId: number) {
      return sql<{ field: string; time: Date; value: unknown }[]>`
        SELECT field, time, value FROM telemetry_latest WHERE device_id = ${deviceId} ORDER BY field`
    },

    /** One value per window that holds the field; numeric aggregations ignore non-numeric values. */
    async aggregate(
      deviceId: number,
      query: { field: string; aggregation: Aggregation; windowMs: number; startMs: number; endMs: number },
    ) {
      const value = sql`data -> ${query.field}`
      const number = sql`CASE WHEN jsonb_typeof(${value}) = 'number' THEN (data ->> ${query.field})::float8 END`
      const aggregate = {
        mean: sql`avg(${number})`,
        min: sql`min(${number})`,
        max: sql`max(${number})`,
        sum: sql`sum(${number})`,
        count: sql`count(*)::int`,
        first: sql`(array_agg(${value} ORDER BY time))[1]`,
        last: sql`(array_agg(${value} ORDER BY time DESC))[1]`,
      }[query.aggregation]
      return sql<Bucket[]>`
        SELECT date_bin(${`${query.windowMs} milliseconds`}::interval, time, TIMESTAMPTZ 'epoch') AS bucket,
               ${aggregate} AS value
        FROM telemetry
        WHERE device_id = ${deviceId} AND time >= ${new Date(query.startMs)} AND time < ${new Date(query.endMs)}
          AND data ? ${query.field}
        GROUP BY 1 ORDER BY 1`
    },
  }
}

export type TelemetryQueryRepository = ReturnType<typeof createTelemetryQueryRepository>
