import type { AlertNotice } from '@iotflow/contracts'
import type { NotifiableTransition } from '@iotflow/db'
import type { Logger } from '@iotflow/runtime'
import mqtt, { type MqttClient } from 'mqtt'

/** A transition to firing or resolved as MQTT subscribers read it; undefined for the others. */
export function alertNotice(transition: NotifiableTransition): AlertNotice | undefined {
  if (transition.to !== 'firing' && transition.to !== 'resolved') return undefined
  return {
    transition_id: transition.id,
    rule_id: transition.rule_id,
    rule: transition.rule_name,
    device_id: transition.device_id,
    state: transition.to,
    at: new Date(transition.at).toISOString(),
    value: transition.value,
    severity: transition.severity,
    labels: transition.labels,
  }
}

/** The two topics of a device's alert: its own and the fleet's. */
export const alertTopics = (topicRoot: string, deviceId: number) => [
  `${topicRoot}/devices/${deviceId}/alerts`,
  `${topicRoot}/alerts`,
]

const PUBLISH_TIMEOUT_MS = 5_000

/**
 * One MQTT connection that publishes notices at QoS 1. A publish while the broker is unreachable
 * fails at once (the delivery job is retried with backoff) instead of waiting in mqtt.js' offline
 * queue, where a job would hold its lock for as long as the broker is away.
 */
export function createMqttPublisher(url: string, logger: Logger) {
  const client: MqttClient = mqtt.connect(url, {
    clientId: `iotflow-alerts-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    protocolVersion: 5,
    reconnectPeriod: 1_000,
    connectTimeout: 5_000,
  })
  client.on('error', (error) => logger.warn({ err: error.message }, 'alert MQTT connection error'))
  return {
    async publish(messages: { topic: string; payload: string }[]): Promise<void> {
      if (!client.connected) throw new Error(`MQTT broker ${url} not connected`)
      const timeout = AbortSignal.timeout(PUBLISH_TIMEOUT_MS)
      await Promise.race([
        Promise.all(messages.map((m) => client.publishAsync(m.topic, m.payload, { qos: 1 }))),
        new Promise((_, reject) =>
          timeout.addEventListener('abort', () => reject(new Error('MQTT publish timed out'))),
        ),
      ])
    },
    close: () => client.endAsync(),
  }
}
