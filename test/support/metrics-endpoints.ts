import { exposition, type Metrics } from '@iotflow/metrics'
import { type ReadinessReport, startHealthServer } from '@iotflow/runtime'
import type { ScrapeTarget } from '@iotflow/testkit'
import type { Pipeline } from './pipeline.js'

interface ServableWriter {
  ready(): Promise<ReadinessReport>
  metrics: Metrics
}

/**
 * The pipeline with both writers (and, when asked, an alert evaluator), each serving /health and
 * /metrics on a port of its own exactly as its main.ts does, so a test can scrape the apps over
 * HTTP like Prometheus does.
 */
export async function startWritersWithEndpoints(
  pipeline: Pipeline,
  options: { alertEvaluator?: boolean } = {},
) {
  const writers = {
    postgres: await pipeline.startPostgresWriter(),
    influx: await pipeline.startInfluxWriter(),
  }
  const serve = (writer: ServableWriter) =>
    startHealthServer('127.0.0.1', 0, writer.ready, () => exposition(writer.metrics.registry))
  const servers = { postgres: await serve(writers.postgres), influx: await serve(writers.influx) }
  const evaluator = options.alertEvaluator ? await serve(await pipeline.startAlertEvaluator()) : undefined
  const urls = {
    gateway: pipeline.baseUrl,
    postgres: `http://127.0.0.1:${servers.postgres.port}`,
    influx: `http://127.0.0.1:${servers.influx.port}`,
    ...(evaluator && { alertEvaluator: `http://127.0.0.1:${evaluator.port}` }),
  }
  return {
    urls,
    /** The apps as Prometheus jobs, named as in infra/prometheus/prometheus.yml. */
    scrapeTargets: (): ScrapeTarget[] => [
      { job: 'gateway', address: new URL(urls.gateway).host },
      { job: 'writer-postgres', address: new URL(urls.postgres).host },
      { job: 'writer-influx', address: new URL(urls.influx).host },
      ...(urls.alertEvaluator
        ? [{ job: 'alert-evaluator', address: new URL(urls.alertEvaluator).host }]
        : []),
    ],
    close: () =>
      Promise.all([servers.postgres.close(), servers.influx.close(), evaluator?.close()]).then(
        () => undefined,
      ),
  }
}
