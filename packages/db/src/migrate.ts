import { readdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { Logger } from '@iotflow/runtime'
import { retryUntilSuccess } from '@iotflow/runtime'
import postgres from 'postgres'
import { createSql, type Sql } from './client.js'

const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url))
// Any fixed number: it serialises migrations when several processes start together.
const MIGRATION_LOCK = 4_620_191

export interface MigrationReport {
  createdDatabase: boolean
  applied: string[]
}

/** Creates the database if it is missing, then applies pending migrations in order, each in a transaction. */
export async function migrate(databaseUrl: string): Promise<MigrationReport> {
  const createdDatabase = await ensureDatabase(databaseUrl)
  const sql = createSql(databaseUrl, { max: 1 })
  try {
    const applied = await applyMigrations(sql)
    return { createdDatabase, applied }
  } finally {
    await sql.end({ timeout: 5 })
  }
}

/**
 * `migrate`, waiting as long as it takes for PostgreSQL to answer (logging each failure): an app
 * started while PostgreSQL is down waits for it instead of crash-looping.
 */
export async function migrateWhenReachable(
  databaseUrl: string,
  logger: Pick<Logger, 'info' | 'warn'>,
): Promise<MigrationReport> {
  const report = await retryUntilSuccess(() => migrate(databaseUrl), {
    what: 'PostgreSQL (migrations)',
    logger,
  })
  if (report.applied.length) logger.info({ applied: report.applied }, 'migrations applied')
  return report
}

/** The versions of every migration this code knows, in order (file names without `.sql`). */
export async function migrationVersions(): Promise<string[]> {
  return (await readdir(MIGRATIONS_DIR))
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => f.replace(/\.sql$/, ''))
}

async function applyMigrations(sql: Sql): Promise<string[]> {
  const files = (await migrationVersions()).map((version) => `${version}.sql`)
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`
    await tx`
      CREATE TABLE IF NOT EXISTS schema_migrations (
        version text PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`
    const done = new Set(
      (await tx<{ version: string }[]>`SELECT version FROM schema_migrations`).map((r) => r.version),
    )
    const applied: string[] = []
    for (const file of files) {
      const version = file.replace(/\.sql$/, '')
      if (done.has(version)) continue
      await tx.unsafe(await readFile(MIGRATIONS_DIR + file, 'utf8'))
      await tx`INSERT INTO schema_migrations (version) VALUES (${version})`
      applied.push(version)
    }
    return applied
  })
}

/** The database a postgres:// URL names. */
export function databaseNameOf(databaseUrl: string): string {
  const database = decodeURIComponent(new URL(databaseUrl).pathname.slice(1))
  if (!database) throw new Error('DATABASE_URL names no database')
  return database
}

/** The same server's maintenance database (`postgres`), from which databases are created and dropped. */
export function maintenanceUrlOf(databaseUrl: string): string {
  const url = new URL(databaseUrl)
  url.pathname = '/postgres'
  return url.toString()
}

/** Creates the database `databaseUrl` names unless it exists; true when it created it. */
export async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const database = databaseNameOf(databaseUrl)
  const admin = postgres(maintenanceUrlOf(databaseUrl), { max: 1, onnotice: () => {}, connect_timeout: 10 })
  try {
    const [row] = await admin`SELECT 1 AS found FROM pg_database WHERE datname = ${database}`
    if (row) return false
    try {
      await admin.unsafe(`CREATE DATABASE "${database.replace(/"/g, '""')}"`)
      return true
    } catch (error) {
      // Another process created it between our check and our CREATE.
      if ((error as { code?: string }).code === '42P04') return false
      throw error
    }
  } finally {
    await admin.end({ timeout: 5 })
  }
}
