import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { BackupConfig } from '@iotflow/config'
import { databaseNameOf, migrationVersions } from '@iotflow/db'
import type { InfluxQueryEndpoint } from '@iotflow/influx'
import {
  checkInfluxServerAndTool,
  dropInfluxDatabase,
  influxBackupTargetOf,
  influxDatabaseState,
  influxFieldValues,
  influxVersionOf,
  restoreInflux,
} from './influx-store.js'
import { type Manifest, readCheckedManifest } from './manifest.js'
import {
  postgresDatabaseState,
  postgresServerOf,
  postgresToolsFor,
  readPostgresContents,
  restorePostgres,
} from './postgres-store.js'
import { RefusedError } from './refused-error.js'

/** How long a restored InfluxDB database may take to load its shards and answer queries. */
const INFLUX_LOAD_TIMEOUT_MS = 60_000
const INFLUX_LOAD_POLL_MS = 250

export interface RestoreReport {
  manifest: Manifest
  postgres: { points: number; devices: number }
  influx: { fieldValues: number }
}

/**
 * Restores the backup in `dir` into the database DATABASE_URL names and the InfluxDB database (or
 * bucket) the writer's variables name. Both must be missing or empty unless `force`, which drops
 * them first; a refusal changes nothing. The manifest is checked before (shape, files, checksums,
 * schema and server versions) and after (the counts the stores hold are the backup's).
 */
export async function runRestore(
  config: BackupConfig,
  dir: string,
  options: { force: boolean },
  log: (line: string) => void = () => {},
): Promise<RestoreReport> {
  const manifest = await readCheckedManifest(dir)
  const influx = influxBackupTargetOf(config)
  if (manifest.influxdb.api !== influx.api) {
    throw new RefusedError(
      `the backup is of InfluxDB's ${manifest.influxdb.api} API, INFLUX_API is ${influx.api}: restore it into the same kind of server`,
    )
  }
  const schema = manifest.iotflow.schema_version
  if (schema !== null && !(await migrationVersions()).includes(schema)) {
    throw new RefusedError(
      `the backup's schema ${schema} is newer than this code's migrations: restore it with the code that made it`,
    )
  }
  const server = await postgresServerOf(config.DATABASE_URL)
  if (server.major < manifest.postgresql.major) {
    throw new RefusedError(
      `the backup is of PostgreSQL ${manifest.postgresql.major}, the server is PostgreSQL ${server.major}: restore into ${manifest.postgresql.major} or later`,
    )
  }
  const tools = await postgresToolsFor(server, config.PG_BIN_DIR)
  await checkInfluxServerAndTool(influx, await influxVersionOf(config.INFLUX_URL))

  const database = databaseNameOf(config.DATABASE_URL)
  const [postgresState, influxState] = [
    await postgresDatabaseState(config.DATABASE_URL),
    await influxDatabaseState(influx),
  ]
  const occupied = [
    typeof postgresState === 'number' && `PostgreSQL database ${database} holds ${postgresState} table(s)`,
    typeof influxState === 'number' &&
      `InfluxDB ${influx.api === 'v1' ? 'database' : 'bucket'} ${influx.name} holds ${influxState} measurement(s)`,
  ].filter((what): what is string => Boolean(what))
  if (occupied.length > 0 && !options.force) {
    throw new RefusedError(
      `${occupied.join('; ')}: restoring would replace them; --force does (nothing was changed)`,
    )
  }

  log(`postgresql: restoring ${manifest.postgresql.file} into ${database}`)
  await restorePostgres(
    config.DATABASE_URL,
    tools,
    join(dir, manifest.postgresql.file),
    postgresState !== 'missing',
  )
  const postgres = await readPostgresContents(config.DATABASE_URL)
  if (postgres.points !== manifest.postgresql.points || postgres.devices !== manifest.postgresql.devices) {
    throw new Error(
      `PostgreSQL holds ${postgres.points} points and ${postgres.devices} devices after the restore, ` +
        `the backup ${manifest.postgresql.points} and ${manifest.postgresql.devices}`,
    )
  }

  log(`influxdb: restoring ${manifest.influxdb.database} as ${influx.name}`)
  // A restore creates the database; an existing one, even empty, makes it fail.
  if (influxState !== 'missing') await dropInfluxDatabase(influx)
  await restoreInflux(influx, join(dir, manifest.influxdb.dir), manifest.influxdb.database)
  const fieldValues = await loadedFieldValues(influx.endpoint, influx.name)
  if (fieldValues !== manifest.influxdb.field_values) {
    throw new Error(
      `InfluxDB holds ${fieldValues} field values after the restore, the backup ${manifest.influxdb.field_values}`,
    )
  }
  return { manifest, postgres, influx: { fieldValues } }
}

/**
 * The restored database's field values, once it answers: influxd restore returns before the
 * restored shards are loaded, and until they are a query fails ("shard is disabled").
 */
async function loadedFieldValues(endpoint: InfluxQueryEndpoint, name: string): Promise<number> {
  const deadline = Date.now() + INFLUX_LOAD_TIMEOUT_MS
  for (;;) {
    try {
      return await influxFieldValues(endpoint)
    } catch (error) {
      if (Date.now() >= deadline) {
        throw new Error(`InfluxDB did not answer for the restored ${name}: ${(error as Error).message}`)
      }
      await sleep(INFLUX_LOAD_POLL_MS)
    }
  }
}
