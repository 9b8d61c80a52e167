import {
  loadAlertEvaluatorConfig,
  loadGatewayConfig,
  loadWriterInfluxConfig,
  loadWriterPostgresConfig,
} from '@iotflow/config'
import { createQueueDepths, createRedisConnection, type JobCounts, queueLayout } from '@iotflow/queue'
import { createLogger } from '@iotflow/runtime'
import {
  deleteKeys,
  queueKeysPattern,
  registerDeviceOverHttp,
  serviceUrls,
  uniqueName,
  waitFor,
} from '@iotflow/testkit'
import { startAlertEvaluator } from '../../apps/alert-evaluator/src/evaluator.js'
import { buildApp } from '../../apps/gateway/src/app.js'
import { startInfluxWriter } from '../../apps/writer-influx/src/writer.js'
import { startPostgresWriter } from '../../apps/writer-postgres/src/writer.js'

export const ADMIN_TOKEN = 'test-admin-token-0123456789'

export type InfluxOptions =
  | { api?: 'v1'; url: string; database: string }
  | { api: 'v2'; url: string; token: string; org: string; bucket: string }

export interface PipelineOptions {
  databaseUrl: string
  influx: InfluxOptions
  /** Defaults to the shared Redis. */
  redisUrl?: string
  /** More environment for the apps (e.g. a short API_KEY_CACHE_TTL_MS, QUEUE_PARTITIONS). */
  env?: Record<string, string>
}

const influxEnv = (influx: InfluxOptions): Record<string, string> =>
  influx.api === 'v2'
    ? {
        INFLUX_API: 'v2',
        INFLUX_URL: influx.url,
        INFLUX_TOKEN: influx.token,
        INFLUX_ORG: influx.org,
        INFLUX_BUCKET: influx.bucket,
      }
    : { INFLUX_API: 'v1', INFLUX_URL: influx.url, INFLUX_DATABASE: influx.database }

/**
 * The whole pipeline in this process, against the real services: a listening gateway and both
 * writers, isolated by a queue prefix of their own. Writers start on demand so a test can hold one back.
 */
export async function startPipeline(options: PipelineOptions) {
  const queuePrefix = uniqueName('t')
  const env = {
    REDIS_URL: options.redisUrl ?? serviceUrls.redis,
    DATABASE_URL: options.databaseUrl,
    QUEUE_PREFIX: queuePrefix,
    LOG_LEVEL: 'silent',
    ADMIN_TOKEN,
    MIGRATE_ON_START: 'false',
    HEALTH_PORT: '0',
    WRITER_LINGER_MS: '10',
    ...options.env,
  }
  const logger = createLogger('test', 'silent')
  const gateway = await buildApp(loadGatewayConfig(env), { logger: false })
  await gateway.listen({ host: '127.0.0.1', port: 0 })
  const address = gateway.server.address() as { port: number }
  const baseUrl = `http://127.0.0.1:${address.port}`

  const inspector = createRedisConnection(env.REDIS_URL, 'worker')
  inspector.on('error', () => {}) // a test may stop its private Redis
  const layout = queueLayout(queuePrefix, Number(options.env?.QUEUE_PARTITIONS ?? 1))
  const depths = createQueueDepths(inspector, layout)
  const writers: { close(): Promise<void> }[] = []

  const pipeline = {
    baseUrl,
    queuePrefix,
    layout,
    /** A connection to the pipeline's Redis, to read its keys (e.g. a bucket). */
    redis: inspector,

    /** `extraEnv` overrides the writer's environment (e.g. RETENTION_DAYS). */
    startPostgresWriter: async (extraEnv: Record<string, string> = {}) => {
      const writer = await startPostgresWriter(loadWriterPostgresConfig({ ...env, ...extraEnv }), logger)
      writers.push(writer)
      return writer
    },

    startInfluxWriter: async (extraEnv: Record<string, string> = {}) => {
      const writer = await startInfluxWriter(
        loadWriterInfluxConfig({
          ...env,
          ...influxEnv(options.influx),
          INFLUX_TIMEOUT_MS: '2000',
          ...extraEnv,
        }),
        logger,
      )
      writers.push(writer)
      return writer
    },

    /** `extraEnv` overrides the evaluator's environment (ALERTMANAGER_URL above all). */
    startAlertEvaluator: async (extraEnv: Record<string, string> = {}) => {
      const evaluator = await startAlertEvaluator(loadAlertEvaluatorConfig({ ...env, ...extraEnv }), logger)
      writers.push(evaluator)
      return evaluator
    },

    registerDevice: (name: string = uniqueName('device')) =>
      registerDeviceOverHttp(baseUrl, ADMIN_TOKEN, name),

    /** POSTs telemetry; `body` is sent as-is when it is a string. */
    send(apiKey: string | undefined, body: unknown, path = '/api/v1/telemetry') {
      const headers: Record<string, string> = { 'content-type': 'application/json' }
      if (apiKey !== undefined) headers['x-api-key'] = apiKey
      return fetch(`${baseUrl}${path}`, {
        method: 'POST',
        headers,
        body: typeof body === 'string' ? body : JSON.stringify(body),
      })
    },

    /** Jobs in each store queue, by state (summed over the partitions). */
    queueCounts: (): Promise<Record<string, JobCounts>> => depths.read(),
    /** Jobs in each store queue of each partition, by state. */
    queueCountsByPartition: () => depths.readByPartition(),

    /** Resolves once no store job is waiting, active or delayed. */
    drained: () =>
      waitFor(
        async () => {
          const counts = await depths.read()
          return Object.values(counts).every((c) => c.waiting + c.active + c.delayed === 0)
        },
        { what: 'the store queues to drain' },
      ),

    async close() {
      await Promise.all(writers.map((w) => w.close()))
      await gateway.close()
      await depths.close()
      await deleteKeys(inspector, queueKeysPattern(queuePrefix))
      await inspector.quit()
    },
  }
  return pipeline
}

export type Pipeline = Awaited<ReturnType<typeof startPipeline>>
