/**
 * The bridge's counters, rendered in the Prometheus text format at GET /metrics. Deliberately
 * small (plain counters, no library) so it folds into the shared metrics package later.
 */
export class BridgeMetrics {
  messagesReceived = 0
  messagesAccepted = 0
  pointsAccepted = 0
  /** Refused messages by status code (400, 401, 403, 413). */
  readonly messagesRefused = new Map<number, number>()
  /** Attempts that found Redis or Postgres unreachable (the message stayed unacknowledged). */
  unavailableRetries = 0
  errorsPublished = 0
  /** Attempts that failed on an unexpected error (a bug); the message is retried, never dropped. */
  handlerFailures = 0
  /** Messages that waited, unacknowledged, for the queue backlog to fall under its limit. */
  backlogWaits = 0

  refused(statusCode: number): void {
    this.messagesRefused.set(statusCode, (this.messagesRefused.get(statusCode) ?? 0) + 1)
  }

  /** `brokerDropped`: the broker's own count of messages it dropped, when it publishes one. */
  render(connections: { connected: number; total: number }, brokerDropped?: number): string {
    const lines = [
      counter(
        'iotflow_mqtt_messages_received_total',
        'MQTT telemetry messages received',
        this.messagesReceived,
      ),
      counter(
        'iotflow_mqtt_messages_accepted_total',
        'messages queued for both stores',
        this.messagesAccepted,
      ),
      counter('iotflow_mqtt_points_accepted_total', 'points queued for both stores', this.pointsAccepted),
      '# HELP iotflow_mqtt_messages_refused_total messages refused and answered on the errors topic',
      '# TYPE iotflow_mqtt_messages_refused_total counter',
      ...[...this.messagesRefused].map(
        ([status, count]) => `iotflow_mqtt_messages_refused_total{status="${status}"} ${count}`,
      ),
      counter(
        'iotflow_mqtt_unavailable_retries_total',
        'attempts that found Redis or Postgres unreachable (message kept unacknowledged)',
        this.unavailableRetries,
      ),
      counter(
        'iotflow_mqtt_handler_failures_total',
        'attempts that failed on an unexpected error (message retried, never dropped)',
        this.handlerFailures,
      ),
      counter(
        'iotflow_mqtt_backlog_waits_total',
        'messages held unacknowledged until the queue backlog fell under BACKLOG_MAX_POINTS',
        this.backlogWaits,
      ),
      counter(
        'iotflow_mqtt_errors_published_total',
        'answers published on errors topics',
        this.errorsPublished,
      ),
      '# HELP iotflow_mqtt_connections broker connections of this bridge, by state',
      '# TYPE iotflow_mqtt_connections gauge',
      `iotflow_mqtt_connections{state="connected"} ${connections.connected}`,
      `iotflow_mqtt_connections{state="configured"} ${connections.total}`,
      ...(brokerDropped === undefined
        ? []
        : [
            '# HELP iotflow_mqtt_broker_dropped_messages messages the broker acknowledged and then dropped, since it started ($SYS/broker/publish/messages/dropped)',
            '# TYPE iotflow_mqtt_broker_dropped_messages gauge',
            `iotflow_mqtt_broker_dropped_messages ${brokerDropped}`,
          ]),
    ]
    return `${lines.join('\n')}\n`
  }
}

const counter = (name: string, help: string, value: number) =>
  `# HELP ${name} ${help}\n# TYPE ${name} counter\n${name} ${value}`
