import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

/** How a point reached the pipeline: the HTTP gateway or the MQTT bridge. */
export type Transport = 'http' | 'mqtt'
/** The two stores a batch is written to. */
export type StoreName = 'postgres' | 'influxdb'

type DependencyStates = Record<string, { status: 'up' | 'down' }>
/** Jobs per state of one queue in one queue partition. */
type QueueCounts = { partition: number; queue: string; counts: Record<string, number> }[]

/** What the gauges read at scrape time rather than count as things happen. */
export interface ScrapeSources {
  /** The app's readiness probes: each dependency up or down. */
  dependencies?: () => Promise<DependencyStates>
  /** Jobs per queue and queue partition per state, read from Redis. */
  queues?: () => Promise<QueueCounts>
  /** Points queued but not yet stored, per queue partition (its number) and store queue (the backpressure counters). */
  backlog?: () => Promise<Record<string, Record<string, number>>>
  /** Firing alerts per rule (its name) and severity (the alert evaluator's). */
  alertsFiring?: () => Promise<{ rule: string; severity: string; count: number }[]>
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600]
const WRITE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
const BATCH_POINT_BUCKETS = [1, 5, 10, 50, 100, 500, 1000, 2500, 5000, 10_000, 50_000]

/**
 * Every metric IoTFlow exposes, in one registry per app. The gateway, the bridge and the writers
 * create the same set: each records what concerns it and the rest stays at zero, so dashboards
 * and alerts read the same names wherever a series comes from. The MQTT bridge adds its own
 * iotflow_mqtt_* series to this registry (mqtt-bridge.ts).
 */
export function createMetrics() {
  const registry = new Registry()
  // Process memory, CPU, event-loop lag (nodejs_eventloop_lag_*), GC and handles.
  collectDefaultMetrics({ register: registry })
  const registers = [registry]
  const scrape: ScrapeSources = {}

  return {
    registry,
    /** Tells the scrape-time gauges where to read; each app calls it once its connections exist. */
    readOnScrape(sources: ScrapeSources) {
      Object.assign(scrape, sources)
    },

    httpConnectionsRefused: new Counter({
      name: 'iotflow_http_connections_refused_total',
      help: 'Connections closed on arrival because their client address already held HTTP_MAX_CONNECTIONS_PER_IP',
      registers,
    }),

    ingestMessages: new Counter({
      name: 'iotflow_ingest_messages_total',
      help: 'Telemetry requests (HTTP) or messages (MQTT) by outcome: accepted, or the refusal reason',
      labelNames: ['transport', 'outcome'] as const,
      registers,
    }),
    pointsAccepted: new Counter({
      name: 'iotflow_points_accepted_total',
      help: 'Points acknowledged (durably queued for both stores)',
      labelNames: ['transport'] as const,
      registers,
    }),
    pointsRefused: new Counter({
      name: 'iotflow_points_refused_total',
      help: 'Points refused, by reason; a message refused before its body was read counts as one point',
      labelNames: ['transport', 'reason'] as const,
      registers,
    }),

    httpRequestDuration: new Histogram({
      name: 'iotflow_http_request_duration_seconds',
      help: 'HTTP request duration, by route and status code',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: WRITE_BUCKETS,
      registers,
    }),

    queueJobs: new Gauge({
      name: 'iotflow_queue_jobs',
      help: 'Jobs in each pipeline queue and queue partition, by state (read from Redis at scrape time)',
      labelNames: ['queue', 'partition', 'state'] as const,
      registers,
      // A failed read leaves the last depths in place: a scrape never fails because Redis did.
      async collect() {
        const depths = await scrape.queues?.().catch(() => undefined)
        for (const { partition, queue, counts } of depths ?? []) {
          for (const [state, count] of Object.entries(counts))
            this.set({ queue, partition: String(partition), state }, count)
        }
      },
    }),
    backlogPoints: new Gauge({
      name: 'iotflow_queue_backlog_points',
      help: 'Points queued but not yet stored, per store queue and queue partition (read at scrape time)',
      labelNames: ['queue', 'partition'] as const,
      registers,
      async collect() {
        const byPartition = await scrape.backlog?.().catch(() => undefined)
        for (const [partition, points] of Object.entries(byPartition ?? {}))
          for (const [queue, value] of Object.entries(points)) this.set({ queue, partition }, value)
      },
    }),
    backlogLimit: new Gauge({
      name: 'iotflow_queue_backlog_limit_points',
      help: 'BACKLOG_MAX_POINTS: at or over it, the gateway answers 503 and the bridge stops acknowledging',
      registers,
    }),
    dependencyUp: new Gauge({
      name: 'iotflow_dependency_up',
      help: '1 when the dependency answered its probe at scrape time, else 0',
      labelNames: ['dependency'] as const,
      registers,
      async collect() {
        const states = await scrape.dependencies?.().catch(() => undefined)
        for (const [name, state] of Object.entries(states ?? {})) {
          this.set({ dependency: name }, state.status === 'up' ? 1 : 0)
        }
      },
    }),

    storeBatchPoints: new Histogram({
      name: 'iotflow_store_batch_points',
      help: 'Points per batch write, by store',
      labelNames: ['store'] as const,
      buckets: BATCH_POINT_BUCKETS,
      registers,
    }),
    storeWriteDuration: new Histogram({
      name: 'iotflow_store_write_duration_seconds',
      help: 'Duration of one batch write, by store and outcome (ok or error)',
      labelNames: ['store', 'outcome'] as const,
      buckets: WRITE_BUCKETS,
      registers,
    }),
    storePointsWritten: new Counter({
      name: 'iotflow_store_points_written_total',
      help: 'Points committed to each store',
      labelNames: ['store'] as const,
      registers,
    }),
    storeWriteFailures: new Counter({
      name: 'iotflow_store_write_failures_total',
      help: 'Failed batch writes, by store and kind (unavailable, permanent, transient)',
      labelNames: ['store', 'kind'] as const,
      registers,
    }),
    alertsFiring: new Gauge({
      name: 'iotflow_alerts_firing',
      help: 'Alerts firing, per rule and severity (read from PostgreSQL at scrape time)',
      labelNames: ['rule', 'severity'] as const,
      registers,
      async collect() {
        const firing = await scrape.alertsFiring?.().catch(() => undefined)
        if (!firing) return
        // A rule that stopped firing (or was deleted) must not keep its last count.
        this.reset()
        for (const { rule, severity, count } of firing) this.set({ rule, severity }, count)
      },
    }),
    alertEvaluationLag: new Histogram({
      name: 'iotflow_alert_evaluation_lag_seconds',
      help: 'From the acknowledgement (202 / PUBACK) to judged by the alert evaluator, per device batch',
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    endToEndLatency: new Histogram({
      name: 'iotflow_end_to_end_latency_seconds',
      help: 'From the acknowledgement (202 / PUBACK) to committed in the store, per acknowledged batch',
      labelNames: ['store'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
  }
}

export type Metrics = ReturnType<typeof createMetrics>
