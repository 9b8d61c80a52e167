import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { type BackupConfig, describeRedisTarget, redisTargetOf } from '@iotflow/config'
import { pointsInPayload } from '@iotflow/contracts'
import { databaseNameOf } from '@iotflow/db'
import {
  createRedisConnection,
  createUnstoredJobs,
  createWriterHolds,
  HoldLapsedError,
  queueLayoutOf,
  readBacklog,
  type UnstoredJobs,
  type WriterHold,
  type WriterHolds,
} from '@iotflow/queue'
import {
  checkInfluxServerAndTool,
  influxBackupTargetOf,
  influxFieldValues,
  influxVersionOf,
} from './influx-store.js'
import {
  describeFiles,
  INFLUX_BACKUP_DIR,
  LEVEL_BATCHES_FILE,
  type LevelBatches,
  MANIFEST_FORMAT,
  type Manifest,
  POSTGRES_DUMP_FILE,
  writeManifest,
} from './manifest.js'
import { dumpPostgres, type PostgresContents, postgresServerOf, postgresToolsFor } from './postgres-store.js'
import { RefusedError } from './refused-error.js'
import { runCommand } from './run-command.js'

/** How often the jobs unstored at the start are looked at again while the backup waits for them. */
const SETTLE_POLL_MS = 200

/**
 * An online backup into `dir` (absent or empty): PostgreSQL (pg_dump, custom format), InfluxDB
 * (influxd backup -portable, or 2.x's influx backup) and a manifest written last. Every point
 * acknowledged before it started is in it, or counted in the manifest: the store jobs unstored at
 * the start are waited for (BACKUP_SETTLE_MS), then the writers are held while PostgreSQL's
 * snapshot is taken and InfluxDB is copied, so both stores are of one moment (docs/backups.md). The
 * hold is a lease (BACKUP_HOLD_LEASE_MS) renewed while the backup runs: a backup that dies holding
 * it leaves the writers held that long at most.
 */
export async function runBackup(
  config: BackupConfig,
  dir: string,
  log: (line: string) => void = () => {},
): Promise<Manifest> {
  await claimEmptyDirectory(dir)
  const startedAt = new Date()
  const influx = influxBackupTargetOf(config)
  const server = await postgresServerOf(config.DATABASE_URL)
  const tools = await postgresToolsFor(server, config.PG_BIN_DIR)
  const influxVersion = await influxVersionOf(config.INFLUX_URL)
  await checkInfluxServerAndTool(influx, influxVersion)

  const redis = createRedisConnection(redisTargetOf(config), 'producer', { enableOfflineQueue: true })
  redis.on('error', () => {}) // a command that fails rejects; the backup reports that
  const layout = queueLayoutOf(config)
  const unstoredJobs = createUnstoredJobs(redis, layout)
  const holds = createWriterHolds(redis, layout)
  let queue: Manifest['queue']
  let level: Manifest['level']
  let postgres: PostgresContents
  let fieldValues = 0
  try {
    const writers = await unstoredJobs.writersConnected()
    if (Object.values(writers).every((n) => n === 0)) {
      // Not an error (stores that no writer changes are of one moment), but the likeliest cause is a
      // REDIS_URL or QUEUE_PREFIX other than the apps': the apps' writers would then not be held.
      log(
        `no writer is connected to the store queues of QUEUE_PREFIX ${config.QUEUE_PREFIX} at ${describeRedisTarget(redisTargetOf(config))}: ` +
          'if the writers run, they use another Redis or prefix, and this backup does not hold them',
      )
    }
    const backlog = await readBacklog(redis, layout)
    const atStart = await unstoredJobs.ids()
    log(
      `queued at the start: ${describeBacklog(backlog)}; waiting up to ${config.BACKUP_SETTLE_MS} ms for it`,
    )
    await settle(unstoredJobs, atStart, config.BACKUP_SETTLE_MS)
    // Both stores are taken at one moment: the writers are held from PostgreSQL's snapshot to the end
    // of InfluxDB's copy, so that each holds the same points. Ingest goes on meanwhile, into the queue.
    log('holding the writers: snapshot of postgresql, copy of influxdb')
    const hold = await holdWriters(holds, config.BACKUP_HOLD_LEASE_MS, log)
    log(
      `writers held (hold ${hold.token}, a lease of ${config.BACKUP_HOLD_LEASE_MS} ms renewed while the backup runs)`,
    )
    try {
      const left = await settle(unstoredJobs, atStart, 0)
      // Each writer was held where it had got to: a batch one has stored and the other not yet
      // would be in one store of the backup only. Its payload goes into the backup, for the
      // restore to write into the store that lacks it; so its points are in the backup.
      const { lacking } = await unstoredJobs.unevenBatches()
      const batches: LevelBatches = mapValues(lacking, (jobs) => jobs.map((job) => job.payload))
      await writeFile(join(dir, LEVEL_BATCHES_FILE), `${JSON.stringify(batches)}\n`, { flag: 'wx' })
      level = {
        file: LEVEL_BATCHES_FILE,
        lacking: mapValues(batches, (payloads) => ({
          batches: payloads.length,
          points: payloads.reduce((sum, payload) => sum + pointsInPayload(payload), 0),
        })),
      }
      for (const [name, jobs] of Object.entries(lacking)) {
        for (const job of jobs) left[name]?.delete(job.id)
      }
      const uneven = describeLevel(level)
      if (uneven) log(`batches one store holds and the other lacks, kept for the restore: ${uneven}`)
      queue = {
        prefix: config.QUEUE_PREFIX,
        backlog_points_at_start: backlog,
        unstored_jobs_at_start: mapValues(atStart, (ids) => ids.length),
        settle_ms: config.BACKUP_SETTLE_MS,
        acknowledged_not_in_backup: Object.fromEntries(
          await Promise.all(
            Object.entries(left).map(async ([name, states]) => [name, await describe(name, states)]),
          ),
        ),
      }
      postgres = await dumpPostgres(config.DATABASE_URL, tools, join(dir, POSTGRES_DUMP_FILE), async () => {
        await runCommand(influx.backupCommand(join(dir, INFLUX_BACKUP_DIR)))
        fieldValues = await influxFieldValues(influx.endpoint)
        // Rejects when the lease lapsed meanwhile: the stores may not be of one moment, no backup.
        await hold.release()
        log(`writers released; postgresql: pg_dump of ${databaseNameOf(config.DATABASE_URL)}`)
      })
    } catch (error) {
      // A hold that lapsed is the cause to report, whatever failed with it: a backup frozen past
      // its lease wakes to a Redis command that timed out while it slept, not to the lapse.
      const lapse = await hold.release().then(
        () => undefined,
        (releaseError: unknown) => releaseError,
      )
      if (lapse instanceof HoldLapsedError)
        throw new HoldLapsedError(`${lapse.message} (and meanwhile: ${(error as Error).message})`)
      throw error
    }
  } finally {
    await holds.close()
    await unstoredJobs.close()
    await redis.quit().catch(() => redis.disconnect())
  }

  async function describe(name: string, states: Map<string, string>) {
    const ids = [...states.keys()]
    const deadLetters = [...states.values()].filter((state) => state === 'failed').length
    return { jobs: ids.length, points: await unstoredJobs.pointsOf(name, ids), dead_letters: deadLetters }
  }

  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    started_at: startedAt.toISOString(),
    finished_at: new Date().toISOString(),
    iotflow: { schema_version: postgres.schemaVersion, commit: await gitCommit() },
    postgresql: {
      server_version: server.version,
      major: server.major,
      database: databaseNameOf(config.DATABASE_URL),
      file: POSTGRES_DUMP_FILE,
      points: postgres.points,
      devices: postgres.devices,
    },
    influxdb: {
      api: influx.api,
      server_version: influxVersion,
      database: influx.name,
      dir: INFLUX_BACKUP_DIR,
      field_values: fieldValues,
    },
    queue,
    level,
    files: await describeFiles(dir),
  }
  await writeManifest(dir, manifest)
  return manifest
}

/** Creates `dir`, or takes it when it exists and is empty; refuses one that holds anything. */
async function claimEmptyDirectory(dir: string): Promise<void> {
  const entries = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return []
    throw error
  })
  if (entries.length > 0) {
    throw new RefusedError(
      `${dir} is not empty (${entries.length} entries): a backup goes into an empty directory`,
    )
  }
  await mkdir(dir, { recursive: true })
}

/**
 * Waits until every job of `atStart` is stored or a dead letter, or `settleMs` passed; resolves
 * with those still unstored (id → state), per store queue.
 */
async function settle(
  unstoredJobs: UnstoredJobs,
  atStart: Record<string, string[]>,
  settleMs: number,
): Promise<Record<string, Map<string, string>>> {
  const deadline = Date.now() + settleMs
  const left: Record<string, Map<string, string>> = {}
  for (;;) {
    for (const [name, ids] of Object.entries(atStart)) {
      const pending = left[name] ? [...left[name].keys()] : ids
      left[name] = await unstoredJobs.stillUnstored(name, pending)
    }
    const waiting = Object.values(left).some((states) => [...states.values()].some((s) => s !== 'failed'))
    if (!waiting || Date.now() >= deadline) return left
    await sleep(Math.min(SETTLE_POLL_MS, Math.max(0, deadline - Date.now())))
  }
}

/** Longest wait for the writers' running batches once they are held. */
const HOLD_IDLE_TIMEOUT_MS = 30_000
/** Longest wait for another backup's hold on the writers to end (it lasts that backup's InfluxDB copy). */
const HOLD_WAIT_MS = 10 * 60_000

/**
 * Holds the writers under a lease of `leaseMs` (writer-hold.ts); `release` may be called again. A
 * SIGINT or SIGTERM during the hold releases them before the process ends: a backup stopped by hand
 * never leaves them held. One killed outright leaves them held until its lease lapses.
 */
async function holdWriters(
  holds: WriterHolds,
  leaseMs: number,
  log: (line: string) => void,
): Promise<WriterHold> {
  const hold = await holds.hold({
    leaseMs,
    idleTimeoutMs: HOLD_IDLE_TIMEOUT_MS,
    waitMs: HOLD_WAIT_MS,
    onLapsedHold: (lapsed) =>
      log(`a backup's hold on the writers (${lapsed.token}) had lapsed; resumed ${lapsed.queues.join(', ')}`),
  })
  const onSignal = (signal: NodeJS.Signals) => {
    void release()
      .catch(() => {})
      .finally(() => process.kill(process.pid, signal))
  }
  const release = () => {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal)
    return hold.release()
  }
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal)
  return { token: hold.token, release }
}

/** What each store lacks of the other's batches ('' when neither lacks any). */
export const describeLevel = (level: Manifest['level']) =>
  Object.entries(level?.lacking ?? {})
    .filter(([, lacking]) => lacking.batches > 0)
    .map(([name, lacking]) => `${name} lacks ${lacking.points} point(s) in ${lacking.batches} batch(es)`)
    .join(', ')

const describeBacklog = (backlog: Record<string, number>) =>
  Object.entries(backlog)
    .map(([name, points]) => `${name} ${points} point(s)`)
    .join(', ')

function mapValues<T, U>(record: Record<string, T>, map: (value: T) => U): Record<string, U> {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, map(value)]))
}

/** The commit of the checkout this runs from, or null (a build without git, a container). */
async function gitCommit(): Promise<string | null> {
  return runCommand({ command: 'git', args: ['rev-parse', 'HEAD'] }).then(
    (out) => out.trim() || null,
    () => null,
  )
}
