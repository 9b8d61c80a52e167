import type { Sql } from '@iotflow/db'
import { type InfluxQueryEndpoint, MEASUREMENT, queryInfluxQl } from '@iotflow/influx'

/** One device's points as a store holds them: epoch ms → its fields. */
export type StoredPoints = Map<number, Record<string, unknown>>

export interface TimeRange {
  /** Epoch ms, inclusive. */
  since: number
  /** Epoch ms, exclusive. */
  until: number
}

/** Devices with at least one point in the range, in either store. */
export async function devicesInRange(
  sql: Sql,
  influx: InfluxQueryEndpoint,
  range: TimeRange,
): Promise<number[]> {
  const [fromPostgres, fromInflux] = await Promise.all([
    sql<{ device_id: number }[]>`
      SELECT DISTINCT device_id FROM telemetry
      WHERE time >= ${new Date(range.since)} AND time < ${new Date(range.until)}`,
    queryInfluxQl(influx, `SHOW TAG VALUES FROM ${MEASUREMENT} WITH KEY = "device_id"`),
  ])
  const ids = new Set(fromPostgres.map((r) => r.device_id))
  for (const series of fromInflux) for (const [, value] of series.values) ids.add(Number(value))
  return [...ids].sort((a, b) => a - b)
}

/** Rows as a store returns them, in time order: epoch ms and the point's fields. */
export type StoredRow = [number, Record<string, unknown>]

/** The device's rows in PostgreSQL in time order; the first `limit` of them when given. */
export async function postgresRows(
  sql: Sql,
  deviceId: number,
  range: TimeRange,
  limit?: number,
): Promise<StoredRow[]> {
  const rows = await sql<{ t: number; data: Record<string, unknown> }[]>`
    SELECT (extract(epoch FROM time) * 1000)::float8 AS t, data FROM telemetry
    WHERE device_id = ${deviceId} AND time >= ${new Date(range.since)} AND time < ${new Date(range.until)}
    ORDER BY time ${limit === undefined ? sql`` : sql`LIMIT ${limit}`}`
  return rows.map((r) => [r.t, r.data])
}

/**
 * The device's points in InfluxDB (fields only, `*::field`) in time order; the first `limit` when
 * given. The same time in two series (e.g. with different tags) is two rows.
 */
export async function influxRows(
  influx: InfluxQueryEndpoint,
  deviceId: number,
  range: TimeRange,
  limit?: number,
): Promise<StoredRow[]> {
  const series = await queryInfluxQl(
    influx,
    `SELECT *::field FROM ${MEASUREMENT} WHERE device_id = '${deviceId}' ` +
      `AND time >= ${range.since}ms AND time < ${range.until}ms ORDER BY time ASC` +
      (limit === undefined ? '' : ` LIMIT ${limit}`),
  )
  const rows: StoredRow[] = []
  for (const s of series) {
    for (const values of s.values) {
      const fields: Record<string, unknown> = {}
      s.columns.forEach((column, i) => {
        if (column !== 'time' && values[i] !== null) fields[column] = values[i]
      })
      rows.push([values[0] as number, fields])
    }
  }
  return rows
}

/** The device's points in PostgreSQL; `duplicates` counts (device, time) keys seen more than once. */
export async function postgresPoints(sql: Sql, deviceId: number, range: TimeRange) {
  return collect(await postgresRows(sql, deviceId, range))
}

/** The device's points in InfluxDB; a key held twice counts as a duplicate. */
export async function influxPoints(influx: InfluxQueryEndpoint, deviceId: number, range: TimeRange) {
  return collect(await influxRows(influx, deviceId, range))
}

/** Rows as points by time; a time seen again counts as a duplicate (the last row's fields are kept). */
export function collect(rows: StoredRow[]): { points: StoredPoints; duplicates: number } {
  const points: StoredPoints = new Map()
  let duplicates = 0
  for (const [t, fields] of rows) {
    if (points.has(t)) duplicates++
    points.set(t, fields)
  }
  return { points, duplicates }
}
