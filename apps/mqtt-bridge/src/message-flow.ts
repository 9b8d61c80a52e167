import { setTimeout as sleep } from 'node:timers/promises'
import { IngestUnavailableError } from '@iotflow/ingest'
import { type MqttBridgeMetrics, recordIngest, refusalReasonOf } from '@iotflow/metrics'
import type { BacklogMonitor } from '@iotflow/queue'
import type { Logger } from '@iotflow/runtime'
import type { Context } from '@opentelemetry/api'
import type { IPublishPacket } from 'mqtt'
import type { BrokerConnection, Delivery, Disposition } from './broker-connection.js'
import type { MessageVerdict } from './message-handler.js'
import { withMessageSpan } from './message-span.js'

const RETRY_FIRST_MS = 100
const RETRY_MAX_MS = 2_000

export interface MessageFlowOptions {
  /** Decides one message (createMessageHandler); rejects while a dependency is down. */
  handle(topic: string, payload: Buffer, receivedAt: number, trace?: Context): Promise<MessageVerdict>
  backlog: Pick<BacklogMonitor, 'overLimit' | 'whenUnderLimit'>
  metrics: MqttBridgeMetrics
  logger: Pick<Logger, 'debug' | 'warn' | 'error'>
}

export interface MessageFlow {
  /** What to do with one delivered message: acknowledge it, hold it unacknowledged, or refuse it. */
  onMessage(
    connection: Pick<BrokerConnection, 'publish'>,
    topic: string,
    payload: Buffer,
    packet: IPublishPacket,
    delivery: Delivery,
  ): Promise<Disposition>
  /** Lets messages being handled finish; retries stop and leave theirs unacknowledged. */
  close(): Promise<void>
}

/**
 * A message's way through the bridge: wait while the backlog is over its bound, hand it to the
 * ingest path (retrying while a dependency is down: what was not queued is never acknowledged),
 * then acknowledge it, or answer a refusal on the device's error topic.
 */
export function createMessageFlow(options: MessageFlowOptions): MessageFlow {
  const { handle, backlog, metrics, logger } = options
  const stopping = new AbortController()
  const inFlight = new Set<Promise<Disposition>>()
  let unavailableRetries = 0

  function decide(topic: string, payload: Buffer): Promise<MessageVerdict | null> {
    return withMessageSpan(topic, (trace) => decideTraced(topic, payload, trace))
  }

  async function decideTraced(
    topic: string,
    payload: Buffer,
    trace?: Context,
  ): Promise<MessageVerdict | null> {
    const receivedAt = Date.now()
    for (let delay = RETRY_FIRST_MS; ; delay = Math.min(delay * 2, RETRY_MAX_MS)) {
      if (stopping.signal.aborted) return null
      try {
        return await handle(topic, payload, receivedAt, trace)
      } catch (error) {
        if (error instanceof IngestUnavailableError) {
          metrics.mqttUnavailableRetries.inc()
          if (unavailableRetries++ % 50 === 0) {
            logger.warn(
              { dependency: error.dependency, err: (error.cause as Error)?.message },
              'ingest unavailable; holding the message unacknowledged and retrying',
            )
          }
        } else {
          // A bug, not bad input: keep the message (never drop what was not stored), say so loudly.
          metrics.mqttHandlerFailures.inc()
          logger.error({ err: error, topic }, 'unexpected error handling a message; retrying it')
        }
        await sleep(delay, undefined, { signal: stopping.signal }).catch(() => {})
      }
    }
  }

  async function dispose(
    connection: Pick<BrokerConnection, 'publish'>,
    topic: string,
    payload: Buffer,
    packet: IPublishPacket,
    delivery: Delivery,
  ): Promise<Disposition> {
    if (stopping.signal.aborted) return 'hold'
    metrics.mqttMessagesReceived.inc()
    if (backlog.overLimit) {
      // Backpressure: the message waits unacknowledged, and so does its connection, so the broker
      // keeps the rest queued. Then it is handled as usual, unless its connection closed meanwhile
      // (a long wait outlasts the keepalive): the broker delivers it again on the next one.
      metrics.mqttBacklogWaits.inc()
      const waited = await backlog.whenUnderLimit(stopping.signal).then(
        () => true,
        () => false,
      )
      if (!waited || !delivery.live) return 'hold'
    }
    const verdict = await decide(topic, payload)
    if (verdict === null) return 'hold'
    if (verdict.kind === 'accepted') {
      metrics.mqttMessagesAccepted.inc()
      metrics.mqttPointsAccepted.inc(verdict.accepted)
      recordIngest(metrics, 'mqtt', 'accepted', verdict.accepted)
      return 'ack'
    }
    // Refused for good: answer, count, and acknowledge, so the broker does not redeliver it forever.
    metrics.mqttMessagesRefused.inc({ status: verdict.response.statusCode })
    recordIngest(metrics, 'mqtt', refusalReasonOf(verdict.response.statusCode), 1)
    metrics.mqttErrorsPublished.inc()
    connection.publish(verdict.errorTopic, verdict.response, packet.properties?.correlationData)
    logger.debug({ topic, statusCode: verdict.response.statusCode }, 'message refused')
    return verdict.response.statusCode === 429 ? 'quota-exceeded' : 'ack'
  }

  return {
    onMessage(connection, topic, payload, packet, delivery) {
      const run = dispose(connection, topic, payload, packet, delivery)
      inFlight.add(run)
      const settled = () => inFlight.delete(run)
      run.then(settled, settled) // a rejection is logged by the connection
      return run
    },
    async close() {
      stopping.abort()
      await Promise.allSettled([...inFlight])
    },
  }
}
