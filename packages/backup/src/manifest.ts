import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import type { StoreBatchPayload } from '@iotflow/contracts'
import { type Static, Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { RefusedError } from './refused-error.js'

export const MANIFEST_FILE = 'manifest.json'
export const MANIFEST_FORMAT = 'iotflow-backup/1'
export const POSTGRES_DUMP_FILE = 'postgres.dump'
export const INFLUX_BACKUP_DIR = 'influxdb'
export const LEVEL_BATCHES_FILE = 'level-batches.json'

/** The level file: per store queue, the payloads of the batches its store lacks in the backup. */
export type LevelBatches = Record<string, StoreBatchPayload[]>

const Count = Type.Integer({ minimum: 0 })
const PerStoreQueue = <T extends ReturnType<typeof Type.Object>>(value: T) =>
  Type.Record(Type.String(), value)

/**
 * What a backup holds and what it does not: written last, so a directory without it is no backup.
 * Times are ISO-8601; counts are of the backup's moment, when both stores were taken.
 */
export const Manifest = Type.Object({
  format: Type.Literal(MANIFEST_FORMAT),
  started_at: Type.String(),
  finished_at: Type.String(),
  iotflow: Type.Object({
    /** The newest migration applied to the database: a restore needs code that knows it. */
    schema_version: Type.Union([Type.String(), Type.Null()]),
    /** The commit of the code that took the backup, when it ran from a git checkout. */
    commit: Type.Union([Type.String(), Type.Null()]),
  }),
  postgresql: Type.Object({
    server_version: Type.String(),
    major: Count,
    database: Type.String(),
    file: Type.String(),
    points: Count,
    devices: Count,
  }),
  influxdb: Type.Object({
    api: Type.Union([Type.Literal('v1'), Type.Literal('v2')]),
    server_version: Type.String(),
    /** The database (1.x) or bucket (2.x) backed up, under its name in the backup. */
    database: Type.String(),
    dir: Type.String(),
    /** Field values (not points: InfluxQL counts per field), counted at the backup's moment. */
    field_values: Count,
  }),
  queue: Type.Object({
    prefix: Type.String(),
    /** The backlog counter at the start: points queued but not stored, per store queue. */
    backlog_points_at_start: Type.Record(Type.String(), Count),
    /** Store jobs not stored at the start (failed ones included), per store queue. */
    unstored_jobs_at_start: Type.Record(Type.String(), Count),
    settle_ms: Count,
    /**
     * Of the jobs unstored at the start, those still unstored at the backup's moment and not in
     * `level` (the other store had them): points acknowledged before the backup started that it does
     * not hold. Still queued in Redis (or dead letters); a restored Redis or a replay stores them
     * (the writes are idempotent).
     */
    acknowledged_not_in_backup: PerStoreQueue(
      Type.Object({ jobs: Count, points: Count, dead_letters: Count }),
    ),
  }),
  /**
   * Batches one store of the backup holds and the other lacks (the writers were held where each had
   * got to): their payloads are in `file`, per store queue the batches its store lacks, and the
   * restore writes them into that store. So after a restore PostgreSQL holds `postgresql.points`
   * plus `lacking['store-postgres'].points`, InfluxDB the same for its store queue (fewer if some of
   * those points were already stored: the writes are idempotent on device and time). Absent in
   * backups made before it existed.
   */
  level: Type.Optional(
    Type.Object({
      file: Type.String(),
      lacking: PerStoreQueue(Type.Object({ batches: Count, points: Count })),
    }),
  ),
  files: Type.Array(Type.Object({ path: Type.String(), bytes: Count, sha256: Type.String() })),
})
export type Manifest = Static<typeof Manifest>

export type ManifestFile = Manifest['files'][number]

/** Every file under `dir` with its size and SHA-256 (paths relative to `dir`), in path order. */
export async function describeFiles(dir: string): Promise<ManifestFile[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  const files = entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort()
  return Promise.all(
    files.map(async (file) => ({
      path: relative(dir, file),
      bytes: (await stat(file)).size,
      sha256: await sha256Of(file),
    })),
  )
}

export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  await writeFile(join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`, { flag: 'wx' })
}

/**
 * The manifest of the backup in `dir`, checked: its shape, and every file it lists present with its
 * size and checksum. Refuses (RefusedError) naming what is wrong.
 */
export async function readCheckedManifest(dir: string): Promise<Manifest> {
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8'))
  } catch (error) {
    throw new RefusedError(
      `${join(dir, MANIFEST_FILE)}: no readable manifest (${(error as Error).message}): not a complete backup`,
    )
  }
  const problem = Value.Errors(Manifest, parsed).First()
  if (problem)
    throw new RefusedError(`${join(dir, MANIFEST_FILE)}: ${problem.path || '/'} ${problem.message}`)
  const manifest = parsed as Manifest
  for (const expected of manifest.files) {
    const file = join(dir, expected.path)
    const bytes = await stat(file).then(
      (s) => s.size,
      () => undefined,
    )
    if (bytes === undefined) throw new RefusedError(`${file} is missing from the backup`)
    if (bytes !== expected.bytes || (await sha256Of(file)) !== expected.sha256) {
      throw new RefusedError(`${file} is not the file the backup wrote (size or checksum differs)`)
    }
  }
  return manifest
}

function sha256Of(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')))
      .on('error', reject)
  })
}
