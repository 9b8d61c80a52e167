import type { Sql } from '@iotflow/db'
import { MEASUREMENT, queryV1 } from '@iotflow/influx'

/** One device's points as a store holds them: epoch ms → its fields. */
export type StoredPoints = Map<number, Record<string, unknown>>

export interface TimeRange {
  /** Epoch ms, inclusive. */
  since: number
  /** Epoch ms, exclusive. */
  until: number
}

export interface InfluxV1Source {
  url: string
  database: string
}

/** Devices with at least one point in the range, in either store. */
export async function devicesInRange(sql: Sql, influx: InfluxV1Source, range: TimeRange): Promise<number[]> {
  const [fromPostgres, fromInflux] = await Promise.all([
    sql<{ device_id: number }[]>`
      SELECT DISTINCT device_id FROM telemetry
      WHERE time >= ${new Date(range.since)} AND time < ${new Date(range.until)}`,
    queryV1(influx.url, influx.database, `SHOW TAG VALUES FROM ${MEASUREMENT} WITH KEY = "device_id"`),
  ])
  const ids = new Set(fromPostgres.map((r) => r.device_id))
  for (const series of fromInflux) for (const [, value] of series.values) ids.add(Number(value))
  return [...ids].sort((a, b) => a - b)
}

/** The device's rows in PostgreSQL; `duplicates` counts (device, time) keys seen more than once. */
export async function postgresPoints(sql: Sql, deviceId: number, range: TimeRange) {
  const rows = await sql<{ t: number; data: Record<string, unknown> }[]>`
    SELECT (extract(epoch FROM time) * 1000)::float8 AS t, data FROM telemetry
    WHERE device_id = ${deviceId} AND time >= ${new Date(range.since)} AND time < ${new Date(range.until)}`
  return collect(rows.map((r) => [r.t, r.data]))
}

/**
 * The device's points in InfluxDB (fields only, `*::field`). A key held twice (the same time in two
 * series, e.g. with different tags) counts as a duplicate.
 */
export async function influxPoints(influx: InfluxV1Source, deviceId: number, range: TimeRange) {
  const series = await queryV1(
    influx.url,
    influx.database,
    `SELECT *::field FROM ${MEASUREMENT} WHERE device_id = '${deviceId}' ` +
      `AND time >= ${range.since}ms AND time < ${range.until}ms`,
  )
  const rows: [number, Record<string, unknown>][] = []
  for (const s of series) {
    for (const values of s.values) {
      const fields: Record<string, unknown> = {}
      s.columns.forEach((column, i) => {
        if (column !== 'time' && values[i] !== null) fields[column] = values[i]
      })
      rows.push([values[0] as number, fields])
    }
  }
  return collect(rows)
}

function collect(rows: [number, Record<string, unknown>][]): { points: StoredPoints; duplicates: number } {
  const points: StoredPoints = new Map()
  let duplicates = 0
  for (const [t, fields] of rows) {
    if (points.has(t)) duplicates++
    points.set(t, fields)
  }
  return { points, duplicates }
}
