import type { WriterPostgresConfig } from '@iotflow/config'
import { pointCount } from '@iotflow/contracts'
import {
  classifyPostgresError,
  closeSql,
  createSql,
  createTelemetryRepository,
  dropExpiredTelemetry,
  migrateWhenReachable,
  telemetryPartitionsOf,
} from '@iotflow/db'
import { createMetrics, instrumentStoreWrites, type Metrics } from '@iotflow/metrics'
import { startStoreConsumer, type WriterReadiness } from '@iotflow/queue'
import { type Logger, type PeriodicJob, startRetentionJob } from '@iotflow/runtime'
import { spanAttributes, storeCallAttributes, withChildSpan } from '@iotflow/tracing'

export interface PostgresWriter {
  /** Redis and PostgreSQL, and the store-postgres queue's depths and backlog. */
  ready(): Promise<WriterReadiness>
  metrics: Metrics
  /** Drops the day partitions past RETENTION_DAYS (runs at start and every RETENTION_CHECK_INTERVAL_MS). */
  retention: PeriodicJob | undefined
  close(): Promise<void>
}

/** Consumes the store-postgres queue and writes each gathered batch with one upsert. */
export async function startPostgresWriter(
  config: WriterPostgresConfig,
  logger: Logger,
): Promise<PostgresWriter> {
  if (config.MIGRATE_ON_START) await migrateWhenReachable(config.DATABASE_URL, logger)
  const sql = createSql(config.DATABASE_URL, { max: config.DATABASE_POOL_SIZE })
  const telemetry = createTelemetryRepository(sql)
  const metrics = createMetrics()

  const consumer = await startStoreConsumer('storePostgres', config, {
    writeBatch: instrumentStoreWrites(
      metrics,
      'postgres',
      async (batches) => {
        await withChildSpan(
          'postgres insert',
          () => ({
            ...storeCallAttributes('postgresql', batches),
            [spanAttributes.partitions]: telemetryPartitionsOf(batches),
          }),
          () => telemetry.writeBatches(batches),
        )
      },
      classifyPostgresError,
      pointCount,
    ),
    classify: classifyPostgresError,
    logger,
  })

  const ready = () => consumer.readiness({ postgres: () => sql`SELECT 1` })
  metrics.readOnScrape({ dependencies: async () => (await ready()).dependencies })

  const retention = startRetentionJob(
    config,
    async (days) => {
      const dropped = await dropExpiredTelemetry(sql, Date.now() - days * 86_400_000)
      if (dropped.length) logger.info({ dropped }, 'retention: dropped expired partitions')
    },
    logger,
  )

  let closing: Promise<void> | undefined
  return {
    ready,
    metrics,
    retention,
    close() {
      closing ??= (async () => {
        await retention?.close()
        await consumer.close()
        await closeSql(sql)
      })()
      return closing
    },
  }
}
