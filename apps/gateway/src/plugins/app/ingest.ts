import {
  assembleIngest,
  type DeviceRateLimiter,
  type FieldTypeRegistry,
  type IngestAssemblyConfig,
  type IngestService,
} from '@iotflow/ingest'
import type { AlertRuleWatch, BacklogMonitor, BatchEnqueuer, GathererLimits } from '@iotflow/queue'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    ingestService: IngestService
    /** Shared by every ingest route, so each field's type is cached once. */
    fieldTypes: FieldTypeRegistry
    /** Shared by every ingest route: one bucket per device, whichever route it sends through. */
    deviceRateLimiter: DeviceRateLimiter
    /** Requests that arrive together are queued as one batch (group commit). */
    batchEnqueuer: BatchEnqueuer
    /** The queue backlog against BACKLOG_MAX_POINTS, read every 250 ms. */
    backlog: BacklogMonitor
    /** Whether any alert rule exists: only then does a batch also go to the alert evaluator. */
    alertRulesExist: AlertRuleWatch<boolean>
  }
}

export interface IngestPluginOptions {
  config: IngestAssemblyConfig
  groupCommit: GathererLimits
}

/** The ingest path the MQTT bridge assembles too (`assembleIngest`), as this app's decorators. */
export default fp(
  async (fastify: FastifyInstance, options: IngestPluginOptions) => {
    const ingest = await assembleIngest({
      config: options.config,
      sql: fastify.sql,
      redis: fastify.redis,
      groupCommit: options.groupCommit,
      logger: fastify.log,
    })
    fastify.decorate('ingestService', ingest.ingestService)
    fastify.decorate('fieldTypes', ingest.fieldTypes)
    fastify.decorate('deviceRateLimiter', ingest.rateLimiter)
    fastify.decorate('batchEnqueuer', ingest.batchEnqueuer)
    fastify.decorate('backlog', ingest.backlog)
    fastify.decorate('alertRulesExist', ingest.alertRulesExist)
    fastify.addHook('onClose', () => ingest.close())
  },
  { name: 'ingest', dependencies: ['postgres', 'queue'] },
)
