import { existsSync } from 'node:fs'
import { join } from 'node:path'
import {
  closeSql,
  createSql,
  databaseNameOf,
  ensureDatabase,
  maintenanceUrlOf,
  type Sql,
  type TransactionSql,
} from '@iotflow/db'
import { type Command, runCommand } from './run-command.js'

/** pg_dump and pg_restore of one PostgreSQL major version. */
export interface PostgresTools {
  dump: string
  restore: string
  major: number
}

export interface PostgresServer {
  /** `SELECT version()`, e.g. "PostgreSQL 15.20 (Debian …) on x86_64-pc-linux-gnu, …". */
  version: string
  major: number
}

/** The server's version, read over a connection to the maintenance database (there on every server). */
export async function postgresServerOf(databaseUrl: string): Promise<PostgresServer> {
  return withSql(maintenanceUrlOf(databaseUrl), async (sql) => {
    const [row] = await sql<{ version: string; num: number }[]>`
      SELECT version(), current_setting('server_version_num')::int AS num`
    if (!row) throw new Error('PostgreSQL did not say its version')
    return { version: row.version, major: Math.floor(row.num / 10_000) }
  })
}

/**
 * pg_dump and pg_restore of the server's major version: from PG_BIN_DIR when set, else Debian's
 * `/usr/lib/postgresql/<major>/bin` when there, else PATH. A dump made by another major version
 * may not restore (an older pg_dump cannot read a newer server; a newer one writes what an older
 * server refuses), so a mismatch is refused, naming the setting that fixes it.
 */
export async function postgresToolsFor(server: PostgresServer, binDir?: string): Promise<PostgresTools> {
  const debianDir = `/usr/lib/postgresql/${server.major}/bin`
  const dir = binDir ?? (existsSync(join(debianDir, 'pg_dump')) ? debianDir : undefined)
  const tool = (name: string) => (dir ? join(dir, name) : name)
  const tools = { dump: tool('pg_dump'), restore: tool('pg_restore'), major: server.major }
  for (const program of [tools.dump, tools.restore]) {
    const said = await runCommand({ command: program, args: ['--version'] })
    const major = Number(/\(PostgreSQL\) (\d+)/.exec(said)?.[1])
    if (major !== server.major) {
      throw new Error(
        `${program} is PostgreSQL ${major || '?'}'s (${said.trim()}), the server is PostgreSQL ${server.major}: ` +
          `set PG_BIN_DIR to the bin directory of PostgreSQL ${server.major}'s client programs`,
      )
    }
  }
  return tools
}

/**
 * How pg_dump and pg_restore reach the database: the URL without its password, which goes in
 * PGPASSWORD (a command line is visible to every user of the machine).
 */
function libpqTarget(databaseUrl: string): { dbname: string; env: Record<string, string> } {
  const url = new URL(databaseUrl)
  const password = decodeURIComponent(url.password)
  url.password = ''
  return { dbname: url.toString(), env: password ? { PGPASSWORD: password } : {} }
}

/** What a backup records of the database: its points and devices, and its schema version. */
export interface PostgresContents {
  points: number
  devices: number
  schemaVersion: string | null
}

/**
 * pg_dump (custom format) of the database into `file`, from a snapshot exported by a transaction
 * that counts the points and devices in the same snapshot: the counts are the dump's exactly.
 * `afterSnapshot` runs once the snapshot is taken, before pg_dump copies it (the snapshot lasts
 * while the transaction is open).
 */
export async function dumpPostgres(
  databaseUrl: string,
  tools: PostgresTools,
  file: string,
  afterSnapshot: () => Promise<void>,
) {
  return withSql(databaseUrl, (sql) =>
    sql.begin('isolation level repeatable read read only', async (tx) => {
      const [snapshot] = await tx<{ id: string }[]>`SELECT pg_export_snapshot() AS id`
      const contents = await postgresContents(tx)
      await afterSnapshot()
      const { dbname, env } = libpqTarget(databaseUrl)
      const dump: Command = {
        command: tools.dump,
        args: ['--format=custom', `--snapshot=${snapshot?.id}`, `--file=${file}`, `--dbname=${dbname}`],
        env,
      }
      await runCommand(dump)
      return contents
    }),
  )
}

async function postgresContents(sql: TransactionSql): Promise<PostgresContents> {
  const [row] = await sql<{ points: number; devices: number; schema: string | null }[]>`
    SELECT (SELECT count(*) FROM telemetry)::float8 AS points,
           (SELECT count(*) FROM devices)::float8 AS devices,
           (SELECT max(version) FROM schema_migrations) AS schema`
  return { points: row?.points ?? 0, devices: row?.devices ?? 0, schemaVersion: row?.schema ?? null }
}

/** The points, devices and schema version the database holds now. */
export const readPostgresContents = (databaseUrl: string) =>
  withSql(databaseUrl, (sql) => sql.begin('read only', postgresContents))

/** `missing`, `empty` (no table), or how many tables the database holds. */
export async function postgresDatabaseState(databaseUrl: string): Promise<'missing' | 'empty' | number> {
  const name = databaseNameOf(databaseUrl)
  const exists = await withSql(maintenanceUrlOf(databaseUrl), async (sql) => {
    const rows = await sql`SELECT 1 FROM pg_database WHERE datname = ${name}`
    return rows.length > 0
  })
  if (!exists) return 'missing'
  const tables = await withSql(databaseUrl, async (sql) => {
    const [row] = await sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`
    return row?.n ?? 0
  })
  return tables === 0 ? 'empty' : tables
}

/**
 * Restores a dump into the database, which is dropped first when `replace` (its sessions ended:
 * WITH FORCE) and created when missing. One transaction: a restore that fails leaves nothing.
 */
export async function restorePostgres(
  databaseUrl: string,
  tools: PostgresTools,
  file: string,
  replace: boolean,
) {
  if (replace) {
    const name = databaseNameOf(databaseUrl)
    await withSql(maintenanceUrlOf(databaseUrl), (sql) =>
      sql.unsafe(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`),
    )
  }
  await ensureDatabase(databaseUrl)
  const { dbname, env } = libpqTarget(databaseUrl)
  await runCommand({
    command: tools.restore,
    args: ['--no-owner', '--exit-on-error', '--single-transaction', `--dbname=${dbname}`, file],
    env,
  })
}

async function withSql<T>(url: string, use: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = createSql(url, { max: 1 })
  try {
    return await use(sql)
  } finally {
    await closeSql(sql)
  }
}
