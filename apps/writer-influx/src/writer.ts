import type { WriterInfluxConfig } from '@iotflow/config'
import { batchToLines, classifyInfluxError, createInfluxWriteClient } from '@iotflow/influx'
import {
  createBatchCompletionWorker,
  createBatchingWorker,
  createRedisConnection,
  type FailureKind,
  warnIfEvictionPossible,
} from '@iotflow/queue'
import { type DependencyState, type Logger, probe } from '@iotflow/runtime'
import { influxTargetFrom } from './influx-target.js'

export interface InfluxWriter {
  ready(): Promise<Record<string, DependencyState>>
  close(): Promise<void>
}

const failureKinds = { refused: 'permanent', unavailable: 'unavailable', transient: 'transient' } as const

/** Consumes the store-influx queue and writes each gathered batch as one line-protocol body. */
export async function startInfluxWriter(config: WriterInfluxConfig, logger: Logger): Promise<InfluxWriter> {
  const influx = createInfluxWriteClient(influxTargetFrom(config))
  // v1 needs its database to exist; prepared again whenever InfluxDB says it is missing (404).
  let prepared = false
  const connection = createRedisConnection(config.REDIS_URL, 'worker')
  connection.on('error', (error) => logger.warn({ err: error.message }, 'redis connection error'))

  await warnIfEvictionPossible(connection, logger)

  const store = createBatchingWorker({
    queue: 'storeInflux',
    connection,
    queuePrefix: config.QUEUE_PREFIX,
    concurrency: config.WRITER_CONCURRENCY,
    maxBatchPoints: config.WRITER_MAX_BATCH_POINTS,
    lingerMs: config.WRITER_LINGER_MS,
    maxInFlightWrites: config.WRITER_MAX_INFLIGHT_WRITES,
    writeBatch: async (batches) => {
      if (!prepared) {
        await influx.prepare()
        prepared = true
      }
      try {
        await influx.write(batches.flatMap(batchToLines))
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode === 404) prepared = false
        throw error
      }
    },
    classify: (error): FailureKind => failureKinds[classifyInfluxError(error)],
    logger,
  })
  const completion = createBatchCompletionWorker(connection, config.QUEUE_PREFIX, logger)

  let closing: Promise<void> | undefined
  return {
    async ready() {
      const [redis, influxdb] = await Promise.all([
        probe(() => connection.ping()),
        probe(() => influx.prepare()),
      ])
      return { redis, influxdb }
    },
    close() {
      closing ??= (async () => {
        await Promise.all([store.close(), completion.close()])
        await connection.quit().catch(() => connection.disconnect())
      })()
      return closing
    },
  }
}
