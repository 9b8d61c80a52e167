import { exposition, type Metrics } from '@iotflow/metrics'
import { type ReadinessReport, startHealthServer } from '@iotflow/runtime'
import type { ScrapeTarget } from '@iotflow/testkit'
import type { Pipeline } from './pipeline.js'

interface ServableWriter {
  ready(): Promise<ReadinessReport>
  metrics: Metrics
}

/**
 * The pipeline with both writers, each serving /health and /metrics on a port of its own exactly
 * as its main.ts does, so a test can scrape gateway and writers over HTTP like Prometheus does.
 */
export async function startWritersWithEndpoints(pipeline: Pipeline) {
  const writers = {
    postgres: await pipeline.startPostgresWriter(),
    influx: await pipeline.startInfluxWriter(),
  }
  const serve = (writer: ServableWriter) =>
    startHealthServer('127.0.0.1', 0, writer.ready, () => exposition(writer.metrics.registry))
  const servers = { postgres: await serve(writers.postgres), influx: await serve(writers.influx) }
  const urls = {
    gateway: pipeline.baseUrl,
    postgres: `http://127.0.0.1:${servers.postgres.port}`,
    influx: `http://127.0.0.1:${servers.influx.port}`,
  }
  return {
    urls,
    /** The three apps as Prometheus jobs, named as in infra/prometheus/prometheus.yml. */
    scrapeTargets: (): ScrapeTarget[] => [
      { job: 'gateway', address: new URL(urls.gateway).host },
      { job: 'writer-postgres', address: new URL(urls.postgres).host },
      { job: 'writer-influx', address: new URL(urls.influx).host },
    ],
    close: () => Promise.all([servers.postgres.close(), servers.influx.close()]).then(() => undefined),
  }
}
