import { createHash } from 'node:crypto'
import type { Sql } from '@iotflow/db'
import {
  devicesInRange,
  type InfluxV1Source,
  influxPoints,
  postgresPoints,
  type StoredPoints,
  type TimeRange,
} from './stored-points.js'

export interface StoreSummary {
  count: number
  /** SHA-256 of the device's points, each as `time fields` with fields in key order (first 16 hex). */
  checksum: string
  duplicates: number
}

export interface DeviceComparison {
  deviceId: number
  postgres: StoreSummary
  influx: StoreSummary
  /** Epoch ms of points only PostgreSQL holds, only InfluxDB holds, or both hold with other values. */
  onlyInPostgres: number[]
  onlyInInflux: number[]
  differing: number[]
  /** Same points with the same fields, and neither store holds a key twice. */
  agree: boolean
}

export interface StoreComparison {
  range: TimeRange
  devices: DeviceComparison[]
  totals: {
    postgres: number
    influx: number
    onlyInPostgres: number
    onlyInInflux: number
    differing: number
  }
  agree: boolean
}

/** One canonical text per point: fields sorted by name, values as JSON. */
const canonical = (fields: Record<string, unknown>) =>
  JSON.stringify(
    Object.keys(fields)
      .sort()
      .map((key) => [key, fields[key]]),
  )

function summarize(points: StoredPoints, duplicates: number): StoreSummary {
  const hash = createHash('sha256')
  for (const t of [...points.keys()].sort((a, b) => a - b)) {
    hash.update(`${t} ${canonical(points.get(t) ?? {})}\n`)
  }
  return { count: points.size, checksum: hash.digest('hex').slice(0, 16), duplicates }
}

/**
 * Compares the two stores point by point over a time range, device by device: counts, a checksum of
 * the values, and which points are missing on one side or hold other values. The stores agree when
 * every device has the same points with the same fields and neither holds a key twice.
 */
export async function compareStores(
  sql: Sql,
  influx: InfluxV1Source,
  range: TimeRange,
  deviceIds?: number[],
): Promise<StoreComparison> {
  const devices: DeviceComparison[] = []
  for (const deviceId of deviceIds ?? (await devicesInRange(sql, influx, range))) {
    const [pg, ix] = await Promise.all([
      postgresPoints(sql, deviceId, range),
      influxPoints(influx, deviceId, range),
    ])
    const onlyInPostgres: number[] = []
    const differing: number[] = []
    for (const [t, fields] of pg.points) {
      const other = ix.points.get(t)
      if (!other) onlyInPostgres.push(t)
      else if (canonical(other) !== canonical(fields)) differing.push(t)
    }
    const onlyInInflux = [...ix.points.keys()].filter((t) => !pg.points.has(t))
    const differences = onlyInPostgres.length + onlyInInflux.length + differing.length
    devices.push({
      deviceId,
      postgres: summarize(pg.points, pg.duplicates),
      influx: summarize(ix.points, ix.duplicates),
      onlyInPostgres: onlyInPostgres.sort((a, b) => a - b),
      onlyInInflux: onlyInInflux.sort((a, b) => a - b),
      differing: differing.sort((a, b) => a - b),
      agree: differences + pg.duplicates + ix.duplicates === 0,
    })
  }
  const sum = (pick: (d: DeviceComparison) => number) => devices.reduce((n, d) => n + pick(d), 0)
  const totals = {
    postgres: sum((d) => d.postgres.count),
    influx: sum((d) => d.influx.count),
    onlyInPostgres: sum((d) => d.onlyInPostgres.length),
    onlyInInflux: sum((d) => d.onlyInInflux.length),
    differing: sum((d) => d.differing.length),
  }
  return { range, devices, totals, agree: devices.every((d) => d.agree) }
}
