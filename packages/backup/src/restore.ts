import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { BackupConfig } from '@iotflow/config'
import { pointsInPayload, type StoreBatchPayload } from '@iotflow/contracts'
import {
  closeSql,
  createSql,
  createTelemetryRepository,
  databaseNameOf,
  migrationVersions,
} from '@iotflow/db'
import {
  batchToLines,
  createInfluxWriteClient,
  type InfluxQueryEndpoint,
  influxTargetFrom,
} from '@iotflow/influx'
import { queueCatalog } from '@iotflow/queue'
import {
  checkInfluxServerAndTool,
  dropInfluxDatabase,
  influxBackupTargetOf,
  influxDatabaseState,
  influxFieldValues,
  influxVersionOf,
  restoreInflux,
} from './influx-store.js'
import { levelBatchesOf } from './level-batches.js'
import { type LevelBatches, type Manifest, readCheckedManifest } from './manifest.js'
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
  /** Per store queue, the points of the batches its store lacked in the backup, written by the restore. */
  leveled: Record<string, number>
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
  const level = await readLevelBatches(dir, manifest)
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

  const postgresLacks = level[queueCatalog.storePostgres.name] ?? []
  if (postgresLacks.length > 0) {
    log(`postgresql: writing the ${postgresLacks.length} batch(es) InfluxDB held and it lacked`)
    const sql = createSql(config.DATABASE_URL, { max: 1 })
    try {
      // Batch by batch: each is of the size a writer writes at once.
      const telemetry = createTelemetryRepository(sql)
      for (const payload of postgresLacks) await telemetry.writeBatches(payload.batches)
    } finally {
      await closeSql(sql)
    }
  }
  const postgresLeveled = await readPostgresContents(config.DATABASE_URL)
  checkLeveled(
    'PostgreSQL',
    'points',
    manifest.postgresql.points,
    postgresLeveled.points,
    pointsOf(postgresLacks),
  )

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
  const influxLacks = level[queueCatalog.storeInflux.name] ?? []
  let leveledFieldValues = fieldValues
  if (influxLacks.length > 0) {
    log(`influxdb: writing the ${influxLacks.length} batch(es) PostgreSQL held and it lacked`)
    const writer = createInfluxWriteClient(influxTargetFrom(config))
    for (const payload of influxLacks) await writer.write(payload.batches.flatMap(batchToLines))
    leveledFieldValues = await influxFieldValues(influx.endpoint)
  }
  const lackedFieldValues = influxLacks.reduce(
    (sum, payload) =>
      sum + payload.batches.flatMap(batchToLines).reduce((n, line) => n + fieldsInLine(line), 0),
    0,
  )
  checkLeveled('InfluxDB', 'field values', fieldValues, leveledFieldValues, lackedFieldValues)
  return {
    manifest,
    postgres: { points: postgresLeveled.points, devices: postgresLeveled.devices },
    influx: { fieldValues: leveledFieldValues },
    leveled: {
      [queueCatalog.storePostgres.name]: pointsOf(postgresLacks),
      [queueCatalog.storeInflux.name]: pointsOf(influxLacks),
    },
  }
}

const pointsOf = (payloads: StoreBatchPayload[]) => payloads.reduce((sum, p) => sum + pointsInPayload(p), 0)

/** The field values of one line of line protocol (its field set: commas outside quoted strings). */
function fieldsInLine(line: string): number {
  // measurement,tags fields timestamp: the field set is after the first unescaped space.
  let fields = 1
  let quoted = false
  let inFields = false
  for (let i = 0; i < line.length; i++) {
    const c = line[i]
    if (c === '\\') {
      i++
      continue
    }
    if (!inFields) {
      if (c === ' ') inFields = true
      continue
    }
    if (c === '"') quoted = !quoted
    else if (!quoted && c === ' ') break
    else if (!quoted && c === ',') fields++
  }
  return fields
}

/**
 * After writing the batches a store lacked: it holds at least what the backup held and at most that
 * plus what it lacked (fewer when some were there already: the writes are idempotent).
 */
function checkLeveled(store: string, unit: string, before: number, after: number, lacked: number) {
  if (after < before || after > before + lacked) {
    throw new Error(
      `${store} holds ${after} ${unit} after writing the batches it lacked; the backup held ${before}, ` +
        `the batches it lacked ${lacked}`,
    )
  }
}

/** The level file of the backup (checked by the manifest's checksum): {} for a backup without one. */
async function readLevelBatches(dir: string, manifest: Manifest): Promise<LevelBatches> {
  if (!manifest.level) return {}
  const file = join(dir, manifest.level.file)
  const batches = levelBatchesOf(JSON.parse(await readFile(file, 'utf8')), file)
  for (const [name, lacking] of Object.entries(manifest.level.lacking)) {
    const payloads = batches[name] ?? []
    if (payloads.length !== lacking.batches || pointsOf(payloads) !== lacking.points) {
      throw new RefusedError(`${file}: ${name}'s batches are not the manifest's`)
    }
  }
  return batches
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
