import { createHash, type Hash } from 'node:crypto'
import type { Sql } from '@iotflow/db'
import type { InfluxQueryEndpoint } from '@iotflow/influx'
import {
  collect,
  devicesInRange,
  influxRows,
  postgresRows,
  type StoredPoints,
  type StoredRow,
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
  /** Time windows the device was read in, each of at most `chunkPoints` rows per store. */
  windows: number
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

export interface CompareOptions {
  /**
   * Rows read from each store at once (10,000 unless given): a device is compared window by window,
   * so memory follows this, not the device's points in the range.
   */
  chunkPoints?: number
}

export const DEFAULT_CHUNK_POINTS = 10_000

/** One canonical text per point: fields sorted by name, values as JSON. */
const canonical = (fields: Record<string, unknown>) =>
  JSON.stringify(
    Object.keys(fields)
      .sort()
      .map((key) => [key, fields[key]]),
  )

/**
 * A store's summary of one device, built window by window in time order: the checksum hashes each
 * point as `time fields`, oldest first, so it is the same however the range was cut.
 */
class StoreTally {
  private readonly hash: Hash = createHash('sha256')
  private count = 0
  private duplicates = 0

  add(points: StoredPoints, duplicates: number): void {
    for (const t of [...points.keys()].sort((a, b) => a - b)) {
      this.hash.update(`${t} ${canonical(points.get(t) ?? {})}\n`)
    }
    this.count += points.size
    this.duplicates += duplicates
  }

  summary(): StoreSummary {
    return { count: this.count, checksum: this.hash.digest('hex').slice(0, 16), duplicates: this.duplicates }
  }
}

/**
 * Compares the two stores point by point over a time range, device by device: counts, a checksum of
 * the values, and which points are missing on one side or hold other values. The stores agree when
 * every device has the same points with the same fields and neither holds a key twice.
 */
export async function compareStores(
  sql: Sql,
  influx: InfluxQueryEndpoint,
  range: TimeRange,
  deviceIds?: number[],
  options: CompareOptions = {},
): Promise<StoreComparison> {
  const chunkPoints = options.chunkPoints ?? DEFAULT_CHUNK_POINTS
  const devices: DeviceComparison[] = []
  for (const deviceId of deviceIds ?? (await devicesInRange(sql, influx, range))) {
    devices.push(await compareDevice(sql, influx, deviceId, range, chunkPoints))
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

/**
 * One device, window by window: each round reads the next `chunkPoints` rows of each store from the
 * cursor, and compares up to the earliest last time of a full read (exclusive; rows at that time are
 * read again next round, so a key is never split between windows and both stores are compared over
 * the same window). Only when `chunkPoints` rows share one millisecond (a key held that many times)
 * is that millisecond read whole.
 */
async function compareDevice(
  sql: Sql,
  influx: InfluxQueryEndpoint,
  deviceId: number,
  range: TimeRange,
  chunkPoints: number,
): Promise<DeviceComparison> {
  const tallies = { postgres: new StoreTally(), influx: new StoreTally() }
  const onlyInPostgres: number[] = []
  const onlyInInflux: number[] = []
  const differing: number[] = []
  let windows = 0
  const read = async (window: TimeRange, limit?: number) => {
    const [pg, ix] = await Promise.all([
      postgresRows(sql, deviceId, window, limit),
      influxRows(influx, deviceId, window, limit),
    ])
    return { pg, ix }
  }
  for (let cursor = range.since; cursor < range.until; windows++) {
    let rows = await read({ since: cursor, until: range.until }, chunkPoints)
    let end = range.until
    for (const full of [rows.pg, rows.ix].filter((r) => r.length === chunkPoints)) {
      end = Math.min(end, Math.floor((full.at(-1) as StoredRow)[0]))
    }
    if (end > cursor) {
      const before = ([t]: StoredRow) => t < end
      rows = { pg: rows.pg.filter(before), ix: rows.ix.filter(before) }
    } else {
      end = cursor + 1
      rows = await read({ since: cursor, until: end })
    }
    const [pg, ix] = [collect(rows.pg), collect(rows.ix)]
    for (const [t, fields] of pg.points) {
      const other = ix.points.get(t)
      if (!other) onlyInPostgres.push(t)
      else if (canonical(other) !== canonical(fields)) differing.push(t)
    }
    for (const t of ix.points.keys()) if (!pg.points.has(t)) onlyInInflux.push(t)
    tallies.postgres.add(pg.points, pg.duplicates)
    tallies.influx.add(ix.points, ix.duplicates)
    cursor = end
  }
  const postgres = tallies.postgres.summary()
  const influxSummary = tallies.influx.summary()
  const differences = onlyInPostgres.length + onlyInInflux.length + differing.length
  return {
    deviceId,
    postgres,
    influx: influxSummary,
    onlyInPostgres: onlyInPostgres.sort((a, b) => a - b),
    onlyInInflux: onlyInInflux.sort((a, b) => a - b),
    differing: differing.sort((a, b) => a - b),
    agree: differences + postgres.duplicates + influxSummary.duplicates === 0,
    windows,
  }
}
