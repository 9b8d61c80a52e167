import { type Static, Type } from '@sinclair/typebox'
import { PARTITION_LIST_PATTERN } from './writer-partitions.js'

/** Env fragments shared by several apps. Each app composes its own schema from these. */

export const LogLevel = Type.Union(
  ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
  { default: 'info', description: 'one of fatal, error, warn, info, debug, trace, silent' },
)

export const loggingEnv = {
  LOG_LEVEL: LogLevel,
}

/**
 * The process's scheduling priority (nice, -20 … 19; raising it above 0 needs no privilege, lowering
 * it below 0 does). On a machine shared by gateway and writers, writers at 10 leave the CPU to
 * requests first (see docs/benchmarks.md for what that trades).
 */
export const processNiceEnv = {
  PROCESS_NICE: Type.Integer({
    minimum: -20,
    maximum: 19,
    default: 0,
    description: 'scheduling priority (nice) of this process',
  }),
}

/** host:port, comma-separated (IPv6 hosts in brackets). */
const NodeList = (description: string) =>
  Type.Optional(
    Type.String({ pattern: '^\\s*[^\\s,]+:\\d{1,5}\\s*(,\\s*[^\\s,]+:\\d{1,5}\\s*)*$', description }),
  )

/**
 * Where Redis is: one of REDIS_URL (a single server, the default), REDIS_SENTINELS with
 * REDIS_SENTINEL_NAME, or REDIS_CLUSTER_NODES. `redisTargetOf` checks that exactly one is used.
 */
export const redisEnv = {
  REDIS_URL: Type.Optional(
    Type.String({
      pattern: '^rediss?://',
      description: 'a redis:// or rediss:// URL of a single Redis (default redis://127.0.0.1:6379)',
    }),
  ),
  REDIS_SENTINELS: NodeList('host:port of each sentinel, comma-separated'),
  REDIS_SENTINEL_NAME: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z0-9_.-]{1,128}$',
      description: 'the name the sentinels monitor the primary by (sentinel monitor <name> ...)',
    }),
  ),
  REDIS_SENTINEL_PASSWORD: Type.Optional(
    Type.String({ minLength: 1, description: "the sentinels' own password (requirepass of sentinel.conf)" }),
  ),
  REDIS_CLUSTER_NODES: NodeList(
    'host:port of some Redis Cluster nodes (any one suffices to find the others)',
  ),
  REDIS_PASSWORD: Type.Optional(
    Type.String({
      minLength: 1,
      description: "the data nodes' password with REDIS_SENTINELS or REDIS_CLUSTER_NODES",
    }),
  ),
  QUEUE_PREFIX: Type.String({
    pattern: '^[A-Za-z0-9_.-]{1,64}$',
    default: 'iotflow',
    description: 'letters, digits, _ . - (used as the Redis Cluster hash tag of every queue key)',
  }),
  QUEUE_PARTITIONS: Type.Integer({
    minimum: 1,
    maximum: 1024,
    default: 1,
    description:
      'partitions of the device-batch queues, each under its own hash tag {<QUEUE_PREFIX>:p<k>} (1: {<QUEUE_PREFIX>}, as before partitions)',
  }),
}

/**
 * Producers (gateway, bridge): acknowledge a batch only once Redis WAIT says this many replicas hold
 * it (docs/redis-ha.md). 0: once the primary has it (replication is asynchronous).
 */
export const replicaAckEnv = {
  REDIS_MIN_REPLICAS_ACK: Type.Integer({
    minimum: 0,
    maximum: 16,
    default: 0,
    description: 'replicas that must hold a batch before it is acknowledged (0: the primary alone)',
  }),
  REDIS_REPLICAS_ACK_TIMEOUT_MS: Type.Integer({
    minimum: 10,
    maximum: 4_000,
    default: 1_000,
    description: 'how long to wait for them; past it the request gets 503 (MQTT: no PUBACK) and is retried',
  }),
}

export const postgresEnv = {
  DATABASE_URL: Type.String({
    pattern: '^postgres(ql)?://',
    default: 'postgres://postgres@127.0.0.1:5432/iotflow',
    description: 'a postgres:// URL',
  }),
  DATABASE_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
}

const Port = (defaultPort: number) => Type.Integer({ minimum: 0, maximum: 65535, default: defaultPort })

export const httpEnv = (defaultPort: number) => ({
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  PORT: Port(defaultPort),
  HTTP_HEADERS_TIMEOUT_MS: Type.Integer({
    minimum: 1000,
    maximum: 600_000,
    default: 10_000,
    description: "a connection must send a request's headers within this, or it is answered 408 and closed",
  }),
  HTTP_REQUEST_TIMEOUT_MS: Type.Integer({
    minimum: 1000,
    maximum: 3_600_000,
    default: 120_000,
    description: 'a whole request, body included, must arrive within this (at least HTTP_HEADERS_TIMEOUT_MS)',
  }),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: Type.Integer({
    minimum: 1000,
    maximum: 600_000,
    default: 72_000,
    description: 'an idle kept-alive connection is closed after this (above a load balancer idle timeout)',
  }),
  HTTP_MAX_CONNECTIONS_PER_IP: Type.Integer({
    minimum: 0,
    maximum: 1_000_000,
    default: 1_000,
    description: 'open connections one client address may hold; more are closed at once (0: no cap)',
  }),
})

/** Writers serve /health on this port (0 = pick a free one, for tests). */
export const healthEnv = (defaultPort: number) => ({
  HEALTH_HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  HEALTH_PORT: Port(defaultPort),
})

/** Group commit of a producer: many small requests queued as one batch (one MULTI, one job per store). */
export const groupCommitEnv = {
  GROUP_COMMIT_MAX_POINTS: Type.Integer({
    minimum: 1,
    maximum: 1_000_000,
    default: 1_000,
    description: 'points gathered into one queued batch at most (a request this large is queued at once)',
  }),
  GROUP_COMMIT_LINGER_MS: Type.Integer({
    minimum: 0,
    maximum: 1000,
    default: 4,
    description:
      'how long the first request of a group waits for others (while an enqueue runs, they gather anyway)',
  }),
  GROUP_COMMIT_MAX_INFLIGHT: Type.Integer({
    minimum: 1,
    maximum: 64,
    default: 2,
    description: 'enqueues (MULTIs) running at once',
  }),
}

/**
 * The retry policy of store jobs is set by the producer at enqueue (gateway and bridge). Unset, the
 * queue catalog's numbers apply (12 attempts, 1,000 ms): the catalog stays the one place that
 * defines the policy, these only override its numbers.
 */
export const storeJobRetryEnv = {
  STORE_JOB_ATTEMPTS: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 100,
      description: 'attempts of a store job that fails transiently before it stays in the dead-letter set',
    }),
  ),
  STORE_JOB_BACKOFF_MS: Type.Optional(
    Type.Integer({
      minimum: 1,
      maximum: 3_600_000,
      description: 'delay before the first retry of a store job, doubled for each further one, jittered',
    }),
  ),
}

export const writerEnv = (defaults: {
  maxBatchPoints: number
  maxInFlightWrites?: number
  lingerMs?: number
}) => ({
  WRITER_PARTITIONS: Type.Optional(
    Type.String({
      pattern: PARTITION_LIST_PATTERN,
      description:
        'the queue partitions this process consumes: numbers and ranges, comma-separated (0-3 or 0,2,5); unset: every partition',
    }),
  ),
  WRITER_CONCURRENCY: Type.Integer({
    minimum: 1,
    maximum: 5000,
    default: 50,
    description: 'jobs held at once; they are written together in batches',
  }),
  WRITER_MAX_INFLIGHT_WRITES: Type.Integer({
    minimum: 1,
    maximum: 64,
    default: defaults.maxInFlightWrites ?? 2,
    description: 'batch writes running at once',
  }),
  WRITER_MAX_BATCH_POINTS: Type.Integer({ minimum: 1, maximum: 1_000_000, default: defaults.maxBatchPoints }),
  WRITER_LINGER_MS: Type.Integer({
    minimum: 0,
    maximum: 10_000,
    default: defaults.lingerMs ?? 20,
    description: 'how long a partial batch waits for more jobs',
  }),
  WRITER_SHUTDOWN_DRAIN_MS: Type.Integer({
    minimum: 0,
    maximum: 60_000,
    default: 10_000,
    description: 'on SIGTERM, how long held jobs may still be written before the rest are handed back',
  }),
  WRITER_LOCK_DURATION_MS: Type.Integer({
    minimum: 2_000,
    maximum: 300_000,
    default: 6_000,
    description:
      "how long a held job's lock lasts without renewal (renewed every half of it); a killed writer's jobs are free again after it",
  }),
  WRITER_STALLED_INTERVAL_MS: Type.Integer({
    minimum: 500,
    maximum: 300_000,
    default: 2_000,
    description:
      'how often a writer looks for jobs whose lock lapsed (their writer died) and queues them again',
  }),
})

/** Limits of one telemetry request (documented in docs/telemetry-contract.md). */
export const telemetryEnv = {
  TELEMETRY_MAX_POINTS: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 10_000 }),
  TELEMETRY_MAX_FIELDS: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
  TELEMETRY_MAX_FIELD_NAME_LENGTH: Type.Integer({ minimum: 1, maximum: 1024, default: 128 }),
  TELEMETRY_MAX_STRING_LENGTH: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 4096 }),
  TELEMETRY_MAX_NESTING: Type.Integer({ minimum: 0, maximum: 16, default: 4 }),
  TELEMETRY_MAX_METADATA_BYTES: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 4096 }),
  TELEMETRY_MIN_TIME: Type.String({
    pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$',
    default: '2000-01-01T00:00:00Z',
    description: 'an ISO-8601 date-time: earlier points are refused',
  }),
  TELEMETRY_MAX_FUTURE_SECONDS: Type.Integer({ minimum: 0, maximum: 10 * 365 * 86400, default: 86400 }),
}

/** How long telemetry is kept, in both stores (0 = forever). */
export const retentionEnv = {
  RETENTION_DAYS: Type.Integer({
    minimum: 0,
    maximum: 36_500,
    default: 0,
    description: 'days; 0 keeps forever',
  }),
}

/** Largest telemetry body (HTTP) or message payload (MQTT); larger ones are refused with 413. */
export const bodyLimitEnv = {
  BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, maximum: 512 * 1024 * 1024, default: 10 * 1024 * 1024 }),
}

/**
 * Per-device rate limits, a token bucket in points shared by every gateway and bridge through Redis
 * (docs/telemetry-contract.md, "Rate limits"); a device's own `rate_limit` overrides both.
 */
export const deviceRateEnv = {
  DEVICE_RATE_POINTS_PER_SECOND: Type.Number({
    minimum: 0,
    maximum: 1_000_000_000,
    default: 1000,
    description: 'points a device may send per second, sustained; 0: no limit for devices without their own',
  }),
  DEVICE_RATE_BURST_POINTS: Type.Integer({
    minimum: 1,
    maximum: 1_000_000_000,
    default: 100_000,
    description: 'points a device may send at once after a quiet time (a backlog after an outage)',
  }),
}

/** How often the gateway and the bridge write the `last_seen` of the devices they heard from. */
export const lastSeenEnv = {
  LAST_SEEN_FLUSH_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 5_000 }),
}

/** How long a device identity is trusted without asking Postgres again (gateway and bridge). */
export const deviceAuthEnv = {
  API_KEY_CACHE_TTL_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 30_000 }),
}

/**
 * Backpressure: the points queued but not yet stored, per store queue, past which the gateway
 * answers 503 and the MQTT bridge stops acknowledging (docs/pipeline.md, "Backpressure"). The
 * writers only report it in /health/ready.
 */
export const backlogEnv = {
  BACKLOG_MAX_POINTS: Type.Integer({
    minimum: 1,
    maximum: 1_000_000_000,
    default: 1_000_000,
    description: 'points queued but not yet stored in one store, past which telemetry waits',
  }),
}

/** Where InfluxDB is and how to reach it: read by the InfluxDB writer and by `pnpm verify`. */
export const influxEnv = {
  INFLUX_API: Type.Union([Type.Literal('v1'), Type.Literal('v2')], {
    default: 'v2',
    description: 'v2 for InfluxDB 2.x (/api/v2/write), v1 for InfluxDB 1.x (/write)',
  }),
  INFLUX_URL: Type.String({ pattern: '^https?://', default: 'http://127.0.0.1:8086' }),
  INFLUX_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 300_000, default: 10_000 }),
  INFLUX_ORG: Type.String({ minLength: 1, default: 'iotflow' }),
  INFLUX_BUCKET: Type.String({ minLength: 1, default: 'telemetry' }),
  INFLUX_TOKEN: Type.Optional(Type.String({ minLength: 1 })),
  INFLUX_DATABASE: Type.String({ minLength: 1, default: 'iotflow' }),
  INFLUX_RETENTION_POLICY: Type.Optional(Type.String({ minLength: 1 })),
  INFLUX_USERNAME: Type.Optional(Type.String({ minLength: 1 })),
  INFLUX_PASSWORD: Type.Optional(Type.String({ minLength: 1 })),
}
const InfluxEnv = Type.Object(influxEnv)
/** The InfluxDB variables as parsed. */
export type InfluxEnvConfig = Static<typeof InfluxEnv>

/** Where the alert evaluator delivers (docs/alerts.md). */
export const alertmanagerEnv = {
  ALERTMANAGER_URL: Type.String({
    pattern: '^https?://',
    default: 'http://127.0.0.1:9093',
    description: "an http(s):// URL of Alertmanager (its v2 API's base)",
  }),
  ALERTMANAGER_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 300_000, default: 5_000 }),
  ALERTMANAGER_RESEND_MS: Type.Integer({
    minimum: 1000,
    maximum: 3_600_000,
    default: 60_000,
    description:
      "every firing alert is sent again this often; keep it well under Alertmanager's resolve_timeout",
  }),
}

/**
 * The alert rules are cached by every producer (whether to fan out to the alert queue) and every
 * evaluator: reloaded on each change announced over Redis, and this often in case one was missed.
 */
export const alertRulesEnv = {
  ALERT_RULES_REFRESH_MS: Type.Integer({
    minimum: 1000,
    maximum: 3_600_000,
    default: 30_000,
    description: 'the cached alert rules are reloaded on every change and also this often',
  }),
}
