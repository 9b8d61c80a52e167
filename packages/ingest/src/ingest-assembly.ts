import { type RedisTargetEnv, redisTargetOf } from '@iotflow/config'
import { createAlertRulesRepository, createFieldTypesRepository, type Sql } from '@iotflow/db'
import {
  type AlertRuleWatch,
  type BacklogMonitor,
  type BatchEnqueuer,
  createBatchEnqueuer,
  createGroupCommitEnqueuer,
  type GathererLimits,
  queueLayoutOf,
  type RedisConnection,
  startBacklogMonitor,
  watchAlertRules,
} from '@iotflow/queue'
import type { Logger } from '@iotflow/runtime'
import { type DeviceRateLimiter, deviceRateLimiterFrom } from './device-rate-limiter.js'
import { FieldTypeRegistry } from './field-type-registry.js'
import { createIngestService, type IngestService, telemetryLimitsFrom } from './ingest-service.js'

/** The settings the ingest path reads, named as in the gateway's and the bridge's configs. */
export type IngestAssemblyConfig = Parameters<typeof telemetryLimitsFrom>[0] &
  Parameters<typeof deviceRateLimiterFrom>[1] &
  RedisTargetEnv & {
    QUEUE_PREFIX: string
    /** A batch is acknowledged once this many replicas hold it (0: the primary alone). */
    REDIS_MIN_REPLICAS_ACK: number
    REDIS_REPLICAS_ACK_TIMEOUT_MS: number
    /** Unset: the catalog's retry policy. */
    STORE_JOB_ATTEMPTS?: number | undefined
    STORE_JOB_BACKOFF_MS?: number | undefined
    BACKLOG_MAX_POINTS: number
    ALERT_RULES_REFRESH_MS: number
  }

export interface IngestAssemblyOptions {
  config: IngestAssemblyConfig
  sql: Sql
  /** A producer connection (createRedisConnection(target, 'producer')); its owner closes it. */
  redis: RedisConnection
  /** Batches that arrive together are queued as one (GROUP_COMMIT_* or MQTT_GROUP_COMMIT_*). */
  groupCommit: GathererLimits
  logger: Pick<Logger, 'warn'>
}

/** Everything between a transport (HTTP route, MQTT message) and the queue. */
export interface IngestAssembly {
  ingestService: IngestService
  /** Shared by every route, so each field's type is cached once. */
  fieldTypes: FieldTypeRegistry
  /** One bucket per device, whichever transport it sends through. */
  rateLimiter: DeviceRateLimiter
  /** The group commit over the fan-out to every store queue. */
  batchEnqueuer: BatchEnqueuer
  /** The queue backlog against BACKLOG_MAX_POINTS: a transport refuses (or holds) while over it. */
  backlog: BacklogMonitor
  /** Whether any alert rule exists: only then does a batch also go to the alert evaluator. */
  alertRulesExist: AlertRuleWatch<boolean>
  /**
   * Flushes the group commit, takes the points devices owe, then stops the monitor and the watch;
   * the caller closes sql and redis.
   */
  close(): Promise<void>
}

/**
 * The one assembly of the ingest path, for the gateway and the MQTT bridge alike: alert-rule
 * presence, the group-committed fan-out, the backlog monitor, field types, rate limits and the
 * ingest service that uses them.
 */
export async function assembleIngest(options: IngestAssemblyOptions): Promise<IngestAssembly> {
  const { config, sql, redis, logger } = options
  const rules = createAlertRulesRepository(sql)
  const alertRulesExist = await watchAlertRules({
    redisTarget: redisTargetOf(config),
    queuePrefix: config.QUEUE_PREFIX,
    load: async () => (await rules.count()) > 0,
    refreshMs: config.ALERT_RULES_REFRESH_MS,
    logger,
    // Unknown (PostgreSQL down at start): fan out, so no alert is missed; the evaluator drops
    // batches no rule watches.
    initial: true,
  })
  const retry = { attempts: config.STORE_JOB_ATTEMPTS, backoffMs: config.STORE_JOB_BACKOFF_MS }
  const batchEnqueuer = createGroupCommitEnqueuer(
    createBatchEnqueuer(redis, queueLayoutOf(config), retry, {
      alertFanOut: () => alertRulesExist.current(),
      ...(config.REDIS_MIN_REPLICAS_ACK > 0 && {
        replicasAck: {
          replicas: config.REDIS_MIN_REPLICAS_ACK,
          timeoutMs: config.REDIS_REPLICAS_ACK_TIMEOUT_MS,
        },
      }),
    }),
    options.groupCommit,
  )
  const backlog = await startBacklogMonitor({
    redis,
    queues: queueLayoutOf(config),
    limit: config.BACKLOG_MAX_POINTS,
    logger,
  })
  const fieldTypes = new FieldTypeRegistry(createFieldTypesRepository(sql))
  const rateLimiter = deviceRateLimiterFrom(redis, config)
  const ingestService = createIngestService({
    fieldTypes,
    enqueuer: batchEnqueuer,
    limits: telemetryLimitsFrom(config),
    rateLimiter,
  })
  let closing: Promise<void> | undefined
  return {
    ingestService,
    fieldTypes,
    rateLimiter,
    batchEnqueuer,
    backlog,
    alertRulesExist,
    close() {
      closing ??= (async () => {
        await batchEnqueuer.close()
        // After the group commit's last MULTIs: their batches' owed points are taken too.
        await rateLimiter.close()
        await backlog.close()
        await alertRulesExist.close()
      })()
      return closing
    },
  }
}
