import type { WriterPostgresConfig } from '@iotflow/config'
import { closeSql, createSql, createTelemetryRepository, migrate } from '@iotflow/db'
import {
  createBatchCompletionWorker,
  createBatchingWorker,
  createRedisConnection,
  warnIfEvictionPossible,
} from '@iotflow/queue'
import { type DependencyState, type Logger, probe } from '@iotflow/runtime'
import { classifyPostgresError } from './classify-postgres-error.js'

export interface PostgresWriter {
  ready(): Promise<Record<string, DependencyState>>
  close(): Promise<void>
}

/** Consumes the store-postgres queue and writes each gathered batch with one upsert. */
export async function startPostgresWriter(
  config: WriterPostgresConfig,
  logger: Logger,
): Promise<PostgresWriter> {
  if (config.MIGRATE_ON_START) {
    const report = await migrate(config.DATABASE_URL)
    if (report.applied.length) logger.info({ applied: report.applied }, 'migrations applied')
  }
  const sql = createSql(config.DATABASE_URL, { max: config.DATABASE_POOL_SIZE })
  const telemetry = createTelemetryRepository(sql)
  const connection = createRedisConnection(config.REDIS_URL, 'worker')
  connection.on('error', (error) => logger.warn({ err: error.message }, 'redis connection error'))

  await warnIfEvictionPossible(connection, logger)

  const store = createBatchingWorker({
    queue: 'storePostgres',
    connection,
    queuePrefix: config.QUEUE_PREFIX,
    concurrency: config.WRITER_CONCURRENCY,
    maxBatchPoints: config.WRITER_MAX_BATCH_POINTS,
    lingerMs: config.WRITER_LINGER_MS,
    maxInFlightWrites: config.WRITER_MAX_INFLIGHT_WRITES,
    writeBatch: async (batches) => {
      await telemetry.writeBatches(batches)
    },
    classify: classifyPostgresError,
    logger,
  })
  const completion = createBatchCompletionWorker(connection, config.QUEUE_PREFIX, logger)

  let closing: Promise<void> | undefined
  return {
    async ready() {
      const [redis, postgres] = await Promise.all([
        probe(() => connection.ping()),
        probe(() => sql`SELECT 1`),
      ])
      return { redis, postgres }
    },
    close() {
      closing ??= (async () => {
        await Promise.all([store.close(), completion.close()])
        await closeSql(sql)
        await connection.quit().catch(() => connection.disconnect())
      })()
      return closing
    },
  }
}
