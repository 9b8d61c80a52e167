import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Manifest } from '@iotflow/backup'
import { closeSql, createSql } from '@iotflow/db'
import {
  createTestDatabase,
  createTestInfluxDatabase,
  maintenanceUrl,
  serviceUrls,
  type startPrivateInfluxd,
} from '@iotflow/testkit'
import postgres from 'postgres'
import { startPipeline } from './pipeline.js'

type PrivateInfluxd = Awaited<ReturnType<typeof startPrivateInfluxd>>

/**
 * What a backup test needs of its own: a database, an InfluxDB database on the private influxd (its
 * RPC port is where influxd backup and restore talk), a pipeline (no writer started yet), an empty
 * directory, and the environment of `pnpm backup` and `pnpm restore` for them. Each cleanup is
 * pushed onto `cleanups`. The pipeline queues in the shared Redis unless `redis` names another, in
 * `redis.partitions` queue partitions (QUEUE_PARTITIONS, 1 unless given).
 */
export async function backupStores(
  influxd: PrivateInfluxd,
  cleanups: (() => Promise<unknown>)[],
  redis: { url?: string; partitions?: number } = {},
) {
  const db = await createTestDatabase()
  const influx = await createTestInfluxDatabase(influxd.url)
  const redisUrl = redis.url ?? serviceUrls.redis
  const partitions = { QUEUE_PARTITIONS: String(redis.partitions ?? 1) }
  const pipeline = await startPipeline({ databaseUrl: db.url, influx, redisUrl, env: partitions })
  const dir = await mkdtemp(join(tmpdir(), 'iotflow-backup-test-'))
  cleanups.push(
    () => db.drop(),
    () => influx.drop().catch(() => {}),
    () => pipeline.close(),
    () => rm(dir, { recursive: true, force: true }),
  )
  const env = {
    DATABASE_URL: db.url,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: pipeline.queuePrefix,
    ...partitions,
    INFLUX_API: 'v1',
    INFLUX_URL: influxd.url,
    INFLUX_DATABASE: influx.database,
    INFLUX_BACKUP_HOST: influxd.rpcAddress,
  }
  return { db, influx, pipeline, dir, env }
}

export const BACKUP_CLI = 'packages/backup/src/backup-cli.ts'
export const RESTORE_CLI = 'packages/backup/src/restore-cli.ts'

export async function countRows(databaseUrl: string): Promise<number> {
  const sql = createSql(databaseUrl, { max: 1 })
  try {
    const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM telemetry`
    return row?.n ?? 0
  } finally {
    await closeSql(sql)
  }
}

export interface CliResult {
  status: number
  stdout: string
  stderr: string
}

/** Runs a package script's CLI without blocking this process (the pipeline in it goes on ingesting). */
export function runCli(entry: string, args: string[], env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      'node',
      ['--import', 'tsx', entry, ...args],
      { env: { ...process.env, ...env }, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const status = error ? (typeof error.code === 'number' ? error.code : -1) : 0
        resolve({ status, stdout, stderr })
      },
    )
  })
}

export const backup = (dir: string, env: Record<string, string>) => runCli(BACKUP_CLI, ['--to', dir], env)
export const restore = (dir: string, env: Record<string, string>, ...flags: string[]) =>
  runCli(RESTORE_CLI, ['--from', dir, ...flags], env)
export const verify = (env: Record<string, string>, ...args: string[]) =>
  runCli('packages/verify/src/verify-cli.ts', args, env)

export const readManifest = async (dir: string) =>
  JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Manifest

/** Both stores lost: the backup's PostgreSQL database dropped, and the InfluxDB database. */
export async function dropBothStores(
  manifest: Manifest,
  influx: { drop(): Promise<unknown> },
): Promise<void> {
  const admin = postgres(maintenanceUrl(), { max: 1, onnotice: () => {} })
  try {
    await admin.unsafe(`DROP DATABASE "${manifest.postgresql.database}" WITH (FORCE)`)
  } finally {
    await admin.end()
  }
  await influx.drop()
}
