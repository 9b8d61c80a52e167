import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { closeSql, createSql } from '@iotflow/db'
import {
  createTestDatabase,
  createTestInfluxDatabase,
  serviceUrls,
  type startPrivateInfluxd,
} from '@iotflow/testkit'
import { startPipeline } from './pipeline.js'

type PrivateInfluxd = Awaited<ReturnType<typeof startPrivateInfluxd>>

/**
 * What a backup test needs of its own: a database, an InfluxDB database on the private influxd (its
 * RPC port is where influxd backup and restore talk), a pipeline (no writer started yet), an empty
 * directory, and the environment of `pnpm backup` and `pnpm restore` for them. Each cleanup is
 * pushed onto `cleanups`.
 */
export async function backupStores(influxd: PrivateInfluxd, cleanups: (() => Promise<unknown>)[]) {
  const db = await createTestDatabase()
  const influx = await createTestInfluxDatabase(influxd.url)
  const pipeline = await startPipeline({ databaseUrl: db.url, influx })
  const dir = await mkdtemp(join(tmpdir(), 'iotflow-backup-test-'))
  cleanups.push(
    () => db.drop(),
    () => influx.drop().catch(() => {}),
    () => pipeline.close(),
    () => rm(dir, { recursive: true, force: true }),
  )
  const env = {
    DATABASE_URL: db.url,
    REDIS_URL: serviceUrls.redis,
    QUEUE_PREFIX: pipeline.queuePrefix,
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
