import type { AlertDeliveryPayload } from '@iotflow/contracts'
import type { AlertRulesRepository, AlertStatesRepository } from '@iotflow/db'
import { bullPrefix, processedPayloadOf, queueCatalog, type RedisConnection } from '@iotflow/queue'
import type { Logger } from '@iotflow/runtime'
import { coalescedRun } from '@iotflow/runtime'
import { Queue, UnrecoverableError, Worker } from 'bullmq'
import { alertmanagerAlert, postAlerts } from './alertmanager.js'
import { keyedSerial } from './keyed-serial.js'
import { alertNotice, alertTopics, createMqttPublisher } from './mqtt-notices.js'
import { postWebhook } from './webhook.js'

export interface AlertDeliveryOptions {
  connection: RedisConnection
  queuePrefix: string
  states: AlertStatesRepository
  /** Where a rule's webhook is, and its secret: read when a webhook notification is sent. */
  rules: Pick<AlertRulesRepository, 'webhookOf'>
  webhookTimeoutMs: number
  alertmanagerUrl: string
  timeoutMs: number
  /** Every firing alert is sent again this often (well within Alertmanager's resolve_timeout). */
  resendMs: number
  /** Also publish each transition on MQTT (`<topicRoot>/devices/{id}/alerts` and `<topicRoot>/alerts`). */
  mqtt?: { url: string; topicRoot: string }
  logger: Logger
}

export interface AlertDelivery {
  /** Queues a delivery for every stored transition not yet queued (the outbox); one at a time. */
  flush(): Promise<void>
  close(): Promise<void>
}

/** Transitions read from the outbox per round trip. */
const OUTBOX_PAGE = 500
/** The outbox is also read this often: transitions an evaluator stored just before it died. */
const OUTBOX_SWEEP_MS = 5_000
/**
 * Deliveries running at once. One at a time made each delivery wait for every one queued before
 * it, and the queue fell behind under load (docs/benchmarks.md, scenario 9).
 */
const DELIVERY_CONCURRENCY = 8
/** The keys under which webhook notices, and MQTT notices, take turns (one receiver each). */
const WEBHOOK_TURN = 'webhook'
const MQTT_TURN = 'mqtt'

/**
 * Hands notifications to Alertmanager, to the rule's webhook when it has one, and to MQTT when
 * configured, through a queue of their own (retries with backoff, the dead-letter set), so a
 * receiver being down delays them and loses none. A job id is made of the transition's id and
 * the receiver: queued twice (two evaluators reading the outbox at once, a crash before it was
 * marked), it is delivered once.
 */
export function startAlertDelivery(options: AlertDeliveryOptions): AlertDelivery {
  const { alertDeliver } = queueCatalog
  const prefix = bullPrefix(options.queuePrefix)
  const queue = new Queue<AlertDeliveryPayload>(alertDeliver.name, { connection: options.connection, prefix })
  const mqttOptions = options.mqtt
  const publisher = mqttOptions && createMqttPublisher(mqttOptions.url, options.logger)
  // Webhook and MQTT notices are transitions: each receiver gets them in the order their jobs were
  // taken (the order queued), so it hears a pair's transitions in order unless a retry intervenes.
  // Alertmanager is posted states: a (rule, device)'s posts take turns (a read of its state is
  // never posted after a newer one), different pairs' at once.
  const inTurn = keyedSerial()
  const worker = new Worker<AlertDeliveryPayload>(
    alertDeliver.name,
    async (job) => {
      const data = processedPayloadOf('alertDeliver', job)
      if (data.target === 'webhook') {
        return inTurn([WEBHOOK_TURN], async () => {
          const webhook = await options.rules.webhookOf(data.rule_id)
          // The rule was deleted, or lost its webhook, since: nobody to tell.
          if (!webhook) return
          const { body, transition_id: transitionId } = data
          return postWebhook({ ...webhook, body, transitionId, timeoutMs: options.webhookTimeoutMs })
        })
      }
      if (data.target === 'mqtt') {
        if (!publisher) throw new UnrecoverableError('MQTT_URL is not set: no MQTT delivery')
        // Handed to the connection in turn, then acknowledged out of it: the broker keeps one
        // connection's QoS 1 messages of a topic in order, so the next need not wait for a PUBACK.
        const published = await inTurn([MQTT_TURN], async () => ({ acked: publisher.publish(data.messages) }))
        return published.acked
      }
      if (data.target !== 'alertmanager-current')
        return postAlerts(options.alertmanagerUrl, data.alerts, options.timeoutMs)
      const pairs = data.keys.map((key) => `${key.rule_id}:${key.device_id}`)
      return inTurn(pairs, async () => {
        // The alerts as they are now, not as they were when queued: a firing notice retried after
        // its resolution posts the resolution (docs/alerts.md, Order).
        const now = Date.now()
        const current = await options.states.latestNotified(data.keys)
        const alerts = current.flatMap((transition) => alertmanagerAlert(transition, now) ?? [])
        if (alerts.length > 0) await postAlerts(options.alertmanagerUrl, alerts, options.timeoutMs)
      })
    },
    { connection: options.connection, prefix, concurrency: DELIVERY_CONCURRENCY },
  )
  worker.on('error', (error) => options.logger.error({ err: error.message }, 'delivery worker error'))
  worker.on('failed', (job, error) => {
    if (job)
      options.logger.warn({ job: job.id, attempt: job.attemptsMade, err: error.message }, 'delivery failed')
  })

  async function drainOutbox(): Promise<void> {
    for (;;) {
      const transitions = await options.states.undelivered(OUTBOX_PAGE)
      const jobs = transitions.flatMap((transition) => {
        const notice = alertNotice(transition)
        if (!notice) return []
        const job = (id: string, data: AlertDeliveryPayload) => ({
          name: alertDeliver.jobName,
          data,
          opts: { ...alertDeliver.options, jobId: `${id}-${transition.id}` },
        })
        const key = { rule_id: transition.rule_id, device_id: transition.device_id }
        const queued = [job('transition', { target: 'alertmanager-current', keys: [key] })]
        const payload = JSON.stringify(notice)
        if (mqttOptions) {
          const messages = alertTopics(mqttOptions.topicRoot, transition.device_id).map((topic) => ({
            topic,
            payload,
          }))
          queued.push(job('mqtt-transition', { target: 'mqtt', messages }))
        }
        if (transition.webhook) {
          const data = {
            target: 'webhook',
            rule_id: transition.rule_id,
            transition_id: transition.id,
          } as const
          queued.push(job('webhook-transition', { ...data, body: payload }))
        }
        return queued
      })
      if (jobs.length > 0) await queue.addBulk(jobs)
      await options.states.markQueued(transitions.map((t) => t.id))
      if (transitions.length < OUTBOX_PAGE) return
    }
  }

  const flush = coalescedRun(() =>
    drainOutbox().catch((error: Error) =>
      options.logger.warn({ err: error.message }, 'could not read the alert outbox'),
    ),
  )

  /**
   * Every firing alert once more, as one job per period (one across all evaluators: its job id),
   * posted as it is when the job runs (one resolved meanwhile is posted resolved).
   */
  async function resendFiring(): Promise<void> {
    const keys = await options.states.firing()
    if (keys.length === 0) return
    const period = Math.floor(Date.now() / options.resendMs)
    // No retries: the next period sends them again anyway.
    const opts = { ...alertDeliver.options, attempts: 1, jobId: `resend-${period}` }
    await queue.add(alertDeliver.jobName, { target: 'alertmanager-current', keys }, opts)
  }

  const sweep = setInterval(() => void flush(), OUTBOX_SWEEP_MS)
  const resend = setInterval(
    () =>
      void resendFiring().catch((error: Error) =>
        options.logger.warn({ err: error.message }, 'could not send the firing alerts again'),
      ),
    options.resendMs,
  )
  void flush()

  return {
    flush,
    async close() {
      clearInterval(sweep)
      clearInterval(resend)
      await flush()
      await worker.close()
      await queue.close()
      await publisher?.close()
    },
  }
}
