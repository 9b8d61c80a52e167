import type { DeviceBatch } from '@iotflow/contracts'
import type postgres from 'postgres'
import type { Sql } from './client.js'

interface TelemetryRow {
  device_id: number
  time: string
  type: string | null
  data: Record<string, unknown>
  metadata: Record<string, unknown> | null
  received_at: string
}

/**
 * Collapses a set of batches into one row per (device, timestamp), fields merged with the later
 * value winning (as InfluxDB treats a duplicate point), sorted so concurrent upserts lock rows in
 * the same order and cannot deadlock.
 */
export function toTelemetryRows(batches: DeviceBatch[]): TelemetryRow[] {
  const rows = new Map<
    string,
    {
      device_id: number
      t: number
      type: string | null
      data: Record<string, unknown>
      metadata: Record<string, unknown> | null
      received_at: number
    }
  >()
  for (const batch of batches) {
    for (const point of batch.points) {
      const key = `${batch.device_id}:${point.t}`
      const existing = rows.get(key)
      if (existing) {
        Object.assign(existing.data, point.data)
        if (point.type !== undefined) existing.type = point.type
        if (point.metadata !== undefined) existing.metadata = point.metadata
        existing.received_at = batch.received_at
      } else {
        rows.set(key, {
          device_id: batch.device_id,
          t: point.t,
          type: point.type ?? null,
          data: { ...point.data },
          metadata: point.metadata ?? null,
          received_at: batch.received_at,
        })
      }
    }
  }
  return [...rows.values()]
    .sort((a, b) => a.device_id - b.device_id || a.t - b.t)
    .map((r) => ({
      device_id: r.device_id,
      time: new Date(r.t).toISOString(),
      type: r.type,
      data: r.data,
      metadata: r.metadata,
      received_at: new Date(r.received_at).toISOString(),
    }))
}

interface LatestRow {
  device_id: number
  field: string
  time: string
  value: unknown
}

/** The newest value of each (device, field) among the rows (which are sorted by device, time). */
export function latestOf(rows: TelemetryRow[]): LatestRow[] {
  const latest = new Map<string, LatestRow>()
  for (const row of rows) {
    for (const [field, value] of Object.entries(row.data)) {
      latest.set(`${row.device_id}\u0000${field}`, { device_id: row.device_id, field, time: row.time, value })
    }
  }
  return [...latest.values()].sort((a, b) => a.device_id - b.device_id || (a.field < b.field ? -1 : 1))
}

/** UTC days (as YYYY-MM-DD) that the rows fall in. */
function daysOf(rows: TelemetryRow[]): string[] {
  const days = new Set<string>()
  for (const row of rows) days.add(row.time.slice(0, 10))
  return [...days]
}

export function createTelemetryRepository(sql: Sql) {
  const knownPartitions = new Set<string>()

  async function ensurePartitions(rows: TelemetryRow[]) {
    const missing = daysOf(rows).filter((day) => !knownPartitions.has(day))
    if (missing.length === 0) return
    await sql`SELECT telemetry_ensure_partition(day) FROM unnest(${missing}::date[]) AS day`
    for (const day of missing) knownPartitions.add(day)
  }

  async function upsert(rows: TelemetryRow[]) {
    // The points and the latest values commit together; sorted rows keep lock order deadlock-free.
    await sql.begin(async (tx) => {
      await upsertPoints(tx, rows)
      await upsertLatest(tx, latestOf(rows))
    })
  }

  async function upsertLatest(tx: postgres.TransactionSql, latest: LatestRow[]) {
    await tx`
      INSERT INTO telemetry_latest AS l (device_id, field, time, value)
      SELECT device_id, field, time, value
      FROM jsonb_to_recordset(${tx.json(latest as unknown as Parameters<typeof tx.json>[0])})
        AS x(device_id integer, field text, time timestamptz, value jsonb)
      ON CONFLICT (device_id, field) DO UPDATE SET time = EXCLUDED.time, value = EXCLUDED.value
        WHERE EXCLUDED.time >= l.time`
  }

  async function upsertPoints(tx: postgres.TransactionSql, rows: TelemetryRow[]) {
    // One statement, one round trip: the whole batch travels as a single JSON parameter.
    await tx`
      INSERT INTO telemetry AS t (device_id, time, type, data, metadata, received_at)
      SELECT device_id, time, type, data, metadata, received_at
      FROM jsonb_to_recordset(${tx.json(rows as unknown as Parameters<typeof tx.json>[0])})
        AS x(device_id integer, time timestamptz, type text, data jsonb, metadata jsonb, received_at timestamptz)
      ON CONFLICT (device_id, time) DO UPDATE
        SET data = t.data || EXCLUDED.data,
            type = COALESCE(EXCLUDED.type, t.type),
            metadata = COALESCE(EXCLUDED.metadata, t.metadata),
            received_at = EXCLUDED.received_at
        WHERE t.data IS DISTINCT FROM t.data || EXCLUDED.data
           OR t.type IS DISTINCT FROM COALESCE(EXCLUDED.type, t.type)
           OR t.metadata IS DISTINCT FROM COALESCE(EXCLUDED.metadata, t.metadata)`
  }

  return {
    /** Stores the batches idempotently on (device, timestamp); resolves once committed. */
    async writeBatches(batches: DeviceBatch[]): Promise<number> {
      const rows = toTelemetryRows(batches)
      if (rows.length === 0) return 0
      await ensurePartitions(rows)
      try {
        await upsert(rows)
      } catch (error) {
        // A partition we thought existed was dropped (retention): forget what we know and retry once.
        if ((error as { code?: string }).code !== '23514') throw error
        knownPartitions.clear()
        await ensurePartitions(rows)
        await upsert(rows)
      }
      return rows.length
    },
  }
}

export type TelemetryRepository = ReturnType<typeof createTelemetryRepository>
