import type { Sql } from './client.js'

const DAY_MS = 86_400_000

/**
 * Drops every day partition that ends at or before `cutoffMs`: retention by `DROP TABLE`, never a
 * DELETE scan. Points are therefore gone within a day of passing the period. The latest-value rows
 * of fields not seen since the cutoff go too. Returns the partitions dropped.
 */
export async function dropExpiredTelemetry(sql: Sql, cutoffMs: number): Promise<string[]> {
  const lastWholeDay = new Date(Math.floor(cutoffMs / DAY_MS) * DAY_MS - DAY_MS).toISOString().slice(0, 10)
  const partitions = await sql<{ name: string }[]>`
    SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'telemetry'::regclass
      AND c.relname ~ '^telemetry_p[0-9]{8}$'
      AND to_date(substr(c.relname, 12), 'YYYYMMDD') <= ${lastWholeDay}::date
    ORDER BY 1`
  for (const { name } of partitions) await sql`DROP TABLE IF EXISTS ${sql(name)}`
  await sql`DELETE FROM telemetry_latest WHERE time < ${new Date(cutoffMs)}`
  return partitions.map((p) => p.name)
}
