import type { WriterPostgresConfig } from '@iotflow/config'
import { closeSql, createSql, createTelemetryRepository, migrateWhenReachable } from '@iotflow/db'
import { startStoreConsumer } from '@iotflow/queue'
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
  if (config.MIGRATE_ON_START) await migrateWhenReachable(config.DATABASE_URL, logger)
  const sql = createSql(config.DATABASE_URL, { max: config.DATABASE_POOL_SIZE })
  const telemetry = createTelemetryRepository(sql)

  const consumer = await startStoreConsumer('storePostgres', config, {
    writeBatch: async (batches) => {
      await telemetry.writeBatches(batches)
    },
    classify: classifyPostgresError,
    logger,
  })

  let closing: Promise<void> | undefined
  return {
    async ready() {
      const [redis, postgres] = await Promise.all([
        probe(() => consumer.connection.ping()),
        probe(() => sql`SELECT 1`),
      ])
      return { redis, postgres }
    },
    close() {
      closing ??= (async () => {
        await consumer.close()
        await closeSql(sql)
      })()
      return closing
    },
  }
}
