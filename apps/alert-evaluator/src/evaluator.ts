import { type AlertEvaluatorConfig, redisTargetOf } from '@iotflow/config'
import {
  classifyPostgresError,
  closeSql,
  createAlertRulesRepository,
  createAlertStatesRepository,
  createSql,
  migrateWhenReachable,
} from '@iotflow/db'
import { createMetrics, type Metrics } from '@iotflow/metrics'
import { startAlertStreamConsumer, type WriterReadiness, watchAlertRules } from '@iotflow/queue'
import type { Logger } from '@iotflow/runtime'
import { type AlertDelivery, startAlertDelivery } from './delivery.js'
import { decide, isEvaluatedRule, samplesOf } from './judge.js'
import { startSilenceClock } from './silence-clock.js'

export interface AlertEvaluator {
  /** Redis and PostgreSQL, and the alert streams' depths. */
  ready(): Promise<WriterReadiness>
  /**
   * iotflow_alerts_firing, iotflow_alert_evaluation_lag_seconds, the alert streams' depths
   * (iotflow_queue_jobs) and the process's metrics.
   */
  metrics: Metrics
  close(): Promise<void>
}

/**
 * Consumes the alert streams: judges every batch against the rules (cached, reloaded on
 * every change), stores each (rule, device) state and its transitions in one transaction, then
 * queues the notifications of the new transitions for Alertmanager (docs/alerts.md).
 */
export async function startAlertEvaluator(
  config: AlertEvaluatorConfig,
  logger: Logger,
): Promise<AlertEvaluator> {
  if (config.MIGRATE_ON_START) await migrateWhenReachable(config.DATABASE_URL, logger)
  const sql = createSql(config.DATABASE_URL, { max: config.DATABASE_POOL_SIZE })
  const rulesRepository = createAlertRulesRepository(sql)
  const states = createAlertStatesRepository(sql)
  const rules = await watchAlertRules({
    redisTarget: redisTargetOf(config),
    queuePrefix: config.QUEUE_PREFIX,
    load: async () => (await rulesRepository.list()).filter(isEvaluatedRule),
    refreshMs: config.ALERT_RULES_REFRESH_MS,
    logger,
  })

  // Set once the consumer's connection exists; no batch is judged before (the worker starts with it).
  let delivery: AlertDelivery | undefined
  const metrics = createMetrics()
  const consumer = await startAlertStreamConsumer(config, {
    writeBatch: async (batches) => {
      const found = samplesOf(batches, rules.current())
      const keys = [...found.values()].map(({ rule, device_id }) => ({ rule_id: rule.id, device_id }))
      const transitions = await states.evaluate(keys, (locked) => decide(found, locked))
      const judgedAt = Date.now()
      for (const batch of batches) metrics.alertEvaluationLag.observe((judgedAt - batch.received_at) / 1000)
      if (transitions > 0) await delivery?.flush()
    },
    classify: classifyPostgresError,
    logger,
  })
  delivery = startAlertDelivery({
    connection: consumer.connection,
    queuePrefix: config.QUEUE_PREFIX,
    states,
    rules: rulesRepository,
    webhookTimeoutMs: config.WEBHOOK_TIMEOUT_MS,
    alertmanagerUrl: config.ALERTMANAGER_URL,
    timeoutMs: config.ALERTMANAGER_TIMEOUT_MS,
    resendMs: config.ALERTMANAGER_RESEND_MS,
    ...(config.MQTT_URL && { mqtt: { url: config.MQTT_URL, topicRoot: config.MQTT_TOPIC_ROOT } }),
    logger,
  })

  const silenceClock = startSilenceClock({
    states,
    noDataRuleIds: () => rules.current().flatMap((rule) => (rule.kind === 'no_data' ? [rule.id] : [])),
    intervalMs: config.ALERT_NO_DATA_CHECK_MS,
    onFired: () => delivery?.flush(),
    logger,
  })

  const ready = () => consumer.readiness({ postgres: () => sql`SELECT 1` })
  metrics.readOnScrape({
    dependencies: async () => (await ready()).dependencies,
    // The alert streams as iotflow_queue_jobs{queue="alert-evaluate"}: their dead letters are `failed`.
    queues: () => consumer.depthsByPartition(),
    alertsFiring: () => states.firingCounts(),
  })

  let closing: Promise<void> | undefined
  return {
    ready,
    metrics,
    close() {
      closing ??= (async () => {
        await consumer.close()
        await silenceClock.close()
        await delivery?.close()
        await rules.close()
        await closeSql(sql)
      })()
      return closing
    },
  }
}
