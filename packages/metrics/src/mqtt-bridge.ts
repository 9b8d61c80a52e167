import { Counter, Gauge } from 'prom-client'
import { createMetrics } from './registry.js'

const BROKER_DROPPED = 'iotflow_mqtt_broker_dropped_messages'

/** What the bridge's gauges read at scrape time. */
export interface BridgeScrapeSources {
  /** Broker connections subscribed now, of those configured. */
  connections?: () => { connected: number; total: number }
}

/**
 * The MQTT bridge's metrics: the set every app creates (transport="mqtt"), plus its own
 * iotflow_mqtt_* series in the same registry, so GET /metrics is one exposition as the gateway's.
 */
export function createMqttBridgeMetrics() {
  const metrics = createMetrics()
  const registers = [metrics.registry]
  const scrape: BridgeScrapeSources = {}

  const brokerDropped = new Gauge({
    name: BROKER_DROPPED,
    help: 'messages the broker acknowledged and then dropped, since it started ($SYS/broker/publish/messages/dropped)',
    registers: [],
  })

  return {
    ...metrics,
    /** Tells the bridge's scrape-time gauges where to read. */
    readBridgeOnScrape(sources: BridgeScrapeSources) {
      Object.assign(scrape, sources)
    },

    mqttMessagesReceived: new Counter({
      name: 'iotflow_mqtt_messages_received_total',
      help: 'MQTT telemetry messages received',
      registers,
    }),
    mqttMessagesAccepted: new Counter({
      name: 'iotflow_mqtt_messages_accepted_total',
      help: 'messages queued for both stores',
      registers,
    }),
    mqttPointsAccepted: new Counter({
      name: 'iotflow_mqtt_points_accepted_total',
      help: 'points queued for both stores',
      registers,
    }),
    mqttMessagesRefused: new Counter({
      name: 'iotflow_mqtt_messages_refused_total',
      help: 'messages refused and answered on the errors topic',
      labelNames: ['status'] as const,
      registers,
    }),
    mqttUnavailableRetries: new Counter({
      name: 'iotflow_mqtt_unavailable_retries_total',
      help: 'attempts that found Redis or Postgres unreachable (message kept unacknowledged)',
      registers,
    }),
    mqttHandlerFailures: new Counter({
      name: 'iotflow_mqtt_handler_failures_total',
      help: 'attempts that failed on an unexpected error (message retried, never dropped)',
      registers,
    }),
    mqttBacklogWaits: new Counter({
      name: 'iotflow_mqtt_backlog_waits_total',
      help: 'messages held unacknowledged until the queue backlog fell under BACKLOG_MAX_POINTS',
      registers,
    }),
    mqttErrorsPublished: new Counter({
      name: 'iotflow_mqtt_errors_published_total',
      help: 'answers published on errors topics',
      registers,
    }),
    mqttConnections: new Gauge({
      name: 'iotflow_mqtt_connections',
      help: 'broker connections of this bridge, by state',
      labelNames: ['state'] as const,
      registers,
      collect() {
        const connections = scrape.connections?.()
        if (!connections) return
        this.set({ state: 'connected' }, connections.connected)
        this.set({ state: 'configured' }, connections.total)
      },
    }),
    /**
     * Sets the broker's drop count. The series is exposed only from the first count on: a broker
     * that never publishes one leaves it absent rather than a misleading 0.
     */
    brokerDropped(count: number) {
      if (!metrics.registry.getSingleMetric(BROKER_DROPPED)) metrics.registry.registerMetric(brokerDropped)
      brokerDropped.set(count)
    },
  }
}

export type MqttBridgeMetrics = ReturnType<typeof createMqttBridgeMetrics>
