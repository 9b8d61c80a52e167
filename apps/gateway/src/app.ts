import { type GatewayConfig, redisTargetOf } from '@iotflow/config'
import { telemetryLimitsFrom } from '@iotflow/ingest'
import { queueLayoutOf } from '@iotflow/queue'
import Fastify, { type FastifyServerOptions } from 'fastify'
import { LazyChildLogger } from './lib/lazy-child-logger.js'
import { gatewayLoggerOptions } from './lib/logger-options.js'
import { RequestLogController } from './lib/request-log-controller.js'
import { serverOptionsFrom } from './lib/server-options.js'
import audit from './plugins/app/audit.js'
import authentication from './plugins/app/authentication.js'
import backpressure from './plugins/app/backpressure.js'
import connectionsPerIp from './plugins/app/connections-per-ip.js'
import deviceCacheSync from './plugins/app/device-cache-sync.js'
import errorHandler from './plugins/app/error-handler.js'
import ingest from './plugins/app/ingest.js'
import jsonBody from './plugins/app/json-body.js'
import lastSeen from './plugins/app/last-seen.js'
import loadShedding from './plugins/app/load-shedding.js'
import metrics from './plugins/app/metrics.js'
import queueDashboard from './plugins/app/queue-dashboard.js'
import readiness from './plugins/app/readiness.js'
import repositories from './plugins/app/repositories.js'
import tracing from './plugins/app/tracing.js'
import postgres from './plugins/external/postgres.js'
import queue from './plugins/external/queue.js'
import swagger from './plugins/external/swagger.js'
import alertRules from './routes/alert-rules.js'
import alerts from './routes/alerts.js'
import auditRoutes from './routes/audit.js'
import devices from './routes/devices.js'
import edgeGateways from './routes/edge-gateways.js'
import health from './routes/health.js'
import influxdbHealth from './routes/influxdb-health.js'
import ingestStatus from './routes/ingest-status.js'
import lineProtocol from './routes/line-protocol.js'
import operatorTokens from './routes/operator-tokens.js'
import telemetry from './routes/telemetry.js'
import telemetryQuery from './routes/telemetry-query.js'

export interface BuildOptions {
  logger?: FastifyServerOptions['logger']
}

/** Builds the gateway: connections first, then domain plugins, then routes. Ready, not listening. */
export async function buildApp(config: GatewayConfig, options: BuildOptions = {}) {
  const app = Fastify({
    ...serverOptionsFrom(config),
    logger: options.logger ?? gatewayLoggerOptions(config),
    bodyLimit: config.BODY_LIMIT_BYTES,
    // Behind a load balancer the request id comes from it; otherwise Fastify makes one.
    requestIdHeader: 'x-request-id',
    // One "request completed" line per request, and request loggers that cost nothing until they write.
    logController: new RequestLogController(),
    childLoggerFactory: (logger, bindings, childOptions) =>
      new LazyChildLogger(logger, bindings, childOptions),
    return503OnClosing: true,
    // Unknown properties are refused with a 400 that names them, never silently dropped.
    ajv: { customOptions: { removeAdditional: false } },
  })
  await app.register(errorHandler)
  await app.register(tracing)
  await app.register(jsonBody)
  await app.register(swagger)
  await app.register(postgres, {
    databaseUrl: config.DATABASE_URL,
    poolSize: config.DATABASE_POOL_SIZE,
    migrateOnStart: config.MIGRATE_ON_START,
  })
  await app.register(queue, { redisTarget: redisTargetOf(config), queues: queueLayoutOf(config) })
  await app.register(ingest, {
    config,
    groupCommit: {
      maxPoints: config.GROUP_COMMIT_MAX_POINTS,
      lingerMs: config.GROUP_COMMIT_LINGER_MS,
      maxInFlight: config.GROUP_COMMIT_MAX_INFLIGHT,
    },
  })
  await app.register(backpressure)
  await app.register(loadShedding, { shedAfterMs: config.INGEST_SHED_AFTER_MS })
  await app.register(readiness)
  await app.register(metrics)
  await app.register(connectionsPerIp, { maxPerIp: config.HTTP_MAX_CONNECTIONS_PER_IP })
  await app.register(repositories)
  await app.register(lastSeen, { flushIntervalMs: config.LAST_SEEN_FLUSH_MS })
  await app.register(authentication, {
    adminToken: config.ADMIN_TOKEN,
    apiKeyCacheTtlMs: config.API_KEY_CACHE_TTL_MS,
  })
  await app.register(deviceCacheSync, {
    redisTarget: redisTargetOf(config),
    queuePrefix: config.QUEUE_PREFIX,
  })
  await app.register(queueDashboard, { queues: queueLayoutOf(config) })
  await app.register(audit)

  await app.register(health)
  await app.register(influxdbHealth, { writerHealthUrl: config.INFLUX_WRITER_HEALTH_URL })
  await app.register(devices, {
    queuePrefix: config.QUEUE_PREFIX,
    onlineWindowMs: config.DEVICE_ONLINE_SECONDS * 1000,
    registrationMode: config.REGISTRATION_MODE,
    registrationPerIp: config.REGISTRATION_PER_IP,
  })
  await app.register(telemetry)
  await app.register(alertRules, { queuePrefix: config.QUEUE_PREFIX })
  await app.register(alerts)
  await app.register(telemetryQuery)
  await app.register(ingestStatus)
  await app.register(edgeGateways, { limits: telemetryLimitsFrom(config) })
  await app.register(operatorTokens)
  await app.register(auditRoutes)
  await app.register(lineProtocol, {
    limits: telemetryLimitsFrom(config),
    deviceTag: config.LINE_PROTOCOL_DEVICE_TAG,
    maxInFlight: config.LINE_PROTOCOL_MAX_IN_FLIGHT,
  })
  await app.ready()
  return app
}

export type GatewayApp = Awaited<ReturnType<typeof buildApp>>
