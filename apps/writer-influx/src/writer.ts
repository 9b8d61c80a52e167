import type { WriterInfluxConfig } from '@iotflow/config'
import { pointCount } from '@iotflow/contracts'
import { batchToLines, classifyInfluxError, createInfluxWriteClient, influxTargetFrom } from '@iotflow/influx'
import { createMetrics, instrumentStoreWrites, type Metrics } from '@iotflow/metrics'
import { type FailureKind, startStoreConsumer, type WriterReadiness } from '@iotflow/queue'
import { type Logger, type PeriodicJob, startRetentionJob } from '@iotflow/runtime'
import { storeCallAttributes, withChildSpan } from '@iotflow/tracing'

export interface InfluxWriter {
  /** Redis and InfluxDB, and the store-influx queue's depths and backlog. */
  ready(): Promise<WriterReadiness>
  metrics: Metrics
  close(): Promise<void>
  /** Sets InfluxDB's retention to RETENTION_DAYS (at start and every RETENTION_CHECK_INTERVAL_MS). */
  retention: PeriodicJob | undefined
}

const failureKinds = { refused: 'permanent', unavailable: 'unavailable', transient: 'transient' } as const

/** Consumes the store-influx queue and writes each gathered batch as one line-protocol body. */
export async function startInfluxWriter(config: WriterInfluxConfig, logger: Logger): Promise<InfluxWriter> {
  const influx = createInfluxWriteClient(influxTargetFrom(config))
  // v1 needs its database to exist; prepared again whenever InfluxDB says it is missing (404).
  let prepared = false
  const metrics = createMetrics()
  const classify = (error: Error): FailureKind => failureKinds[classifyInfluxError(error)]

  const consumer = await startStoreConsumer('storeInflux', config, {
    writeBatch: instrumentStoreWrites(
      metrics,
      'influxdb',
      async (batches) => {
        if (!prepared) {
          await influx.prepare()
          prepared = true
        }
        try {
          await withChildSpan(
            'influxdb write',
            () => storeCallAttributes('influxdb', batches),
            () => influx.write(batches.flatMap(batchToLines)),
          )
        } catch (error) {
          if ((error as { statusCode?: number }).statusCode === 404) prepared = false
          throw error
        }
      },
      classify,
      pointCount,
    ),
    classify,
    logger,
  })

  const ready = () => consumer.readiness({ influxdb: () => influx.prepare() })
  metrics.readOnScrape({ dependencies: async () => (await ready()).dependencies })

  // Keeps InfluxDB's retention equal to PostgreSQL's; InfluxDB then expires whole shards itself.
  const retention = startRetentionJob(
    config,
    async (days) => {
      await influx.prepare()
      await influx.setRetention(days)
    },
    logger,
  )

  return {
    ready,
    metrics,
    retention,
    async close() {
      await retention?.close()
      await consumer.close()
    },
  }
}
