import { type Static, Type } from '@sinclair/typebox'
import {
  alertmanagerEnv,
  alertRulesEnv,
  backlogEnv,
  bodyLimitEnv,
  deviceAuthEnv,
  deviceRateEnv,
  groupCommitEnv,
  healthEnv,
  httpEnv,
  influxEnv,
  lastSeenEnv,
  loggingEnv,
  postgresEnv,
  processNiceEnv,
  redisEnv,
  replicaAckEnv,
  retentionEnv,
  storeJobRetryEnv,
  telemetryEnv,
  writerEnv,
} from './fragments.js'
import { checkInfluxCredentials } from './influx-credentials.js'
import { ConfigError, parseEnv, requireTogether } from './parse-env.js'
import { redisTargetOf } from './redis-target.js'
import { requireReadableFiles } from './tls-files.js'
import { type WriterPartitionsEnv, writerPartitionsOf } from './writer-partitions.js'

export const GatewayEnv = Type.Object({
  ...loggingEnv,
  ...processNiceEnv,
  ...httpEnv(8080),
  ...redisEnv,
  ...replicaAckEnv,
  ...backlogEnv,
  ...postgresEnv,
  ...telemetryEnv,
  ...retentionEnv,
  ...bodyLimitEnv,
  ...deviceAuthEnv,
  ...deviceRateEnv,
  ...lastSeenEnv,
  ...groupCommitEnv,
  ...storeJobRetryEnv,
  ...alertRulesEnv,
  ADMIN_TOKEN: Type.String({ minLength: 16, description: 'at least 16 characters' }),
  DEVICE_ONLINE_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 86_400,
    default: 300,
    description: 'a device seen within this many seconds is online',
  }),
  MIGRATE_ON_START: Type.Boolean({ default: true }),
  TLS_CERT_FILE: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'the server certificate (PEM, chain included); with TLS_KEY_FILE the gateway serves HTTPS only',
    }),
  ),
  TLS_KEY_FILE: Type.Optional(
    Type.String({ minLength: 1, description: 'the private key of TLS_CERT_FILE (PEM)' }),
  ),
  INFLUX_WRITER_HEALTH_URL: Type.String({
    pattern: '^https?://',
    default: 'http://127.0.0.1:9102',
    description: "the InfluxDB writer's health server, asked by GET /api/v1/influxdb/health",
  }),
  REGISTRATION_MODE: Type.Union([Type.Literal('admin'), Type.Literal('open')], {
    default: 'admin',
    description:
      'admin: POST /api/v1/devices/register needs the admin token; open: anyone may register, REGISTRATION_PER_IP per client address per 5 minutes',
  }),
  REGISTRATION_PER_IP: Type.Integer({
    minimum: 1,
    maximum: 1_000_000,
    default: 10,
    description: 'open registrations per client address per 5 minutes (REGISTRATION_MODE=open)',
  }),
  INGEST_SHED_AFTER_MS: Type.Integer({
    minimum: 0,
    maximum: 600_000,
    default: 200,
    description:
      "while the oldest telemetry request in the gateway's hands (body received) has taken longer than this, new ones get 503 with Retry-After; 0 never sheds",
  }),
  LINE_PROTOCOL_DEVICE_TAG: Type.String({
    minLength: 1,
    maxLength: 128,
    default: 'device_id',
    description: 'the line protocol tag that names the device of a line sent with an edge gateway key',
  }),
  LINE_PROTOCOL_MAX_IN_FLIGHT: Type.Integer({
    minimum: 1,
    maximum: 1000,
    default: 4,
    description:
      'line protocol bodies decompressed, parsed and queued at once; others wait their turn holding only the body as sent (16 per slot at most, then 503 with Retry-After)',
  }),
})
export type GatewayConfig = Static<typeof GatewayEnv>

export const WriterPostgresEnv = Type.Object({
  ...loggingEnv,
  ...processNiceEnv,
  ...redisEnv,
  ...backlogEnv,
  ...postgresEnv,
  // Three COPYs in flight keep PostgreSQL's server busy while one batch is being gathered and
  // another committed; line protocol batches gain about 8 % and JSON batches hold level
  // (docs/benchmarks.md, issue 19).
  ...writerEnv({ maxBatchPoints: 10_000, maxInFlightWrites: 3 }),
  ...healthEnv(9101),
  ...retentionEnv,
  RETENTION_CHECK_INTERVAL_MS: Type.Integer({ minimum: 1000, maximum: 86_400_000, default: 3_600_000 }),
  MIGRATE_ON_START: Type.Boolean({ default: true }),
})
export type WriterPostgresConfig = Static<typeof WriterPostgresEnv>

export const WriterInfluxEnv = Type.Object({
  ...loggingEnv,
  ...processNiceEnv,
  ...redisEnv,
  ...backlogEnv,
  ...writerEnv({ maxBatchPoints: 5_000 }),
  ...healthEnv(9102),
  ...retentionEnv,
  RETENTION_CHECK_INTERVAL_MS: Type.Integer({ minimum: 1000, maximum: 86_400_000, default: 3_600_000 }),
  ...influxEnv,
})
export type WriterInfluxConfig = Static<typeof WriterInfluxEnv>

export const AlertEvaluatorEnv = Type.Object({
  ...loggingEnv,
  ...processNiceEnv,
  ...redisEnv,
  ...postgresEnv,
  // One write at a time by default: batches are then judged in the order they were queued. A longer
  // linger than the writers': each evaluation is a PostgreSQL transaction whose client side was most
  // of the evaluator's CPU at 20 ms (docs/benchmarks.md, scenario 9), and alerts can wait 100 ms.
  ...writerEnv({ maxBatchPoints: 10_000, maxInFlightWrites: 1, lingerMs: 100 }),
  ...healthEnv(9104),
  ...alertmanagerEnv,
  ...alertRulesEnv,
  MIGRATE_ON_START: Type.Boolean({ default: true }),
  ALERT_NO_DATA_CHECK_MS: Type.Integer({
    minimum: 100,
    maximum: 60_000,
    default: 1_000,
    description: 'how often the silent devices of no_data rules are looked for (the clock of no_data)',
  }),
  WEBHOOK_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 300_000, default: 5_000 }),
  MQTT_URL: Type.Optional(
    Type.String({
      pattern: '^(mqtts?|tcp|ssl|wss?)://',
      description: 'an mqtt:// … URL: alerts are also published there (unset: not on MQTT)',
    }),
  ),
  MQTT_TOPIC_ROOT: Type.String({
    pattern: '^[A-Za-z0-9_.-]{1,64}$',
    default: 'iotflow',
    description: 'alerts go to <root>/devices/{id}/alerts and <root>/alerts',
  }),
})
export type AlertEvaluatorConfig = Static<typeof AlertEvaluatorEnv>

const Name = (defaultValue: string, maxLength: number) =>
  Type.String({
    pattern: `^[A-Za-z0-9_.-]{1,${maxLength}}$`,
    default: defaultValue,
    description: `letters, digits, _ . - (at most ${maxLength})`,
  })

export const MqttBridgeEnv = Type.Object({
  ...loggingEnv,
  ...processNiceEnv,
  ...redisEnv,
  ...replicaAckEnv,
  ...backlogEnv,
  ...postgresEnv,
  ...telemetryEnv,
  ...bodyLimitEnv,
  ...deviceAuthEnv,
  ...deviceRateEnv,
  ...lastSeenEnv,
  ...retentionEnv,
  ...storeJobRetryEnv,
  ...alertRulesEnv,
  ...healthEnv(9103),
  MIGRATE_ON_START: Type.Boolean({ default: true }),
  MQTT_URL: Type.String({
    pattern: '^(mqtts?|tcp|ssl|wss?)://',
    default: 'mqtt://127.0.0.1:1883',
    description: 'an mqtt://, mqtts://, ws:// or wss:// URL',
  }),
  MQTT_USERNAME: Type.Optional(Type.String({ minLength: 1 })),
  MQTT_PASSWORD: Type.Optional(Type.String({ minLength: 1 })),
  MQTT_CA_FILE: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'the CA (PEM) that signed the broker certificate, for mqtts:// or wss://',
    }),
  ),
  MQTT_CERT_FILE: Type.Optional(
    Type.String({
      minLength: 1,
      description: "the bridge's client certificate (PEM), for a broker that requires one",
    }),
  ),
  MQTT_KEY_FILE: Type.Optional(
    Type.String({ minLength: 1, description: 'the private key of MQTT_CERT_FILE (PEM)' }),
  ),
  MQTT_CLIENT_ID: Name('iotflow-bridge', 48),
  MQTT_SHARE_GROUP: Name('iotflow-bridges', 64),
  MQTT_TOPIC_ROOT: Name('iotflow', 64),
  MQTT_AUTH_MODE: Type.Union([Type.Literal('payload'), Type.Literal('broker')], {
    default: 'payload',
    description: 'payload: api_key in every message; broker: trust the device the broker authenticated',
  }),
  MQTT_CONNECTIONS: Type.Integer({
    minimum: 1,
    maximum: 1024,
    default: 512,
    description: 'broker connections of this bridge; each holds one unacknowledged message at a time',
  }),
  MQTT_SESSION_EXPIRY_SECONDS: Type.Integer({ minimum: 60, maximum: 4_294_967_295, default: 7 * 86400 }),
  MQTT_GROUP_COMMIT_MAX_POINTS: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1_000 }),
  MQTT_GROUP_COMMIT_LINGER_MS: Type.Integer({ minimum: 0, maximum: 1000, default: 4 }),
  MQTT_GROUP_COMMIT_MAX_INFLIGHT: Type.Integer({ minimum: 1, maximum: 64, default: 2 }),
})
export type MqttBridgeConfig = Static<typeof MqttBridgeEnv>

/** Checks at load that the Redis variables name exactly one Redis mode (redis-target.ts). */
function withRedisTarget<T extends Static<typeof RedisEnv>>(config: T): T {
  redisTargetOf(config)
  return config
}

/** The Redis variables alone: the tools that only need the queues (`pnpm dlq:replay`). */
export const RedisEnv = Type.Object(redisEnv)
export type RedisConfig = Static<typeof RedisEnv>
export const loadRedisConfig = (env: NodeJS.ProcessEnv = process.env): RedisConfig =>
  withRedisTarget(parseEnv(RedisEnv, env))

export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const config = withRedisTarget(parseEnv(GatewayEnv, env))
  requireTogether(config, 'TLS_CERT_FILE', 'TLS_KEY_FILE')
  requireReadableFiles(config, ['TLS_CERT_FILE', 'TLS_KEY_FILE'])
  if (config.HTTP_REQUEST_TIMEOUT_MS < config.HTTP_HEADERS_TIMEOUT_MS) {
    const message = `must be at least HTTP_HEADERS_TIMEOUT_MS (${config.HTTP_HEADERS_TIMEOUT_MS}), got ${config.HTTP_REQUEST_TIMEOUT_MS}`
    throw new ConfigError([{ variable: 'HTTP_REQUEST_TIMEOUT_MS', message }])
  }
  return config
}
/** Checks at load that WRITER_PARTITIONS names partitions of QUEUE_PARTITIONS (writer-partitions.ts). */
function withWriterPartitions<T extends WriterPartitionsEnv>(config: T): T {
  writerPartitionsOf(config)
  return config
}

export const loadAlertEvaluatorConfig = (env: NodeJS.ProcessEnv = process.env) =>
  withWriterPartitions(withRedisTarget(parseEnv(AlertEvaluatorEnv, env)))

export const loadWriterPostgresConfig = (env: NodeJS.ProcessEnv = process.env) =>
  withWriterPartitions(withRedisTarget(parseEnv(WriterPostgresEnv, env)))

export function loadMqttBridgeConfig(env: NodeJS.ProcessEnv = process.env): MqttBridgeConfig {
  const config = withRedisTarget(parseEnv(MqttBridgeEnv, env))
  requireTogether(config, 'MQTT_USERNAME', 'MQTT_PASSWORD')
  requireTogether(config, 'MQTT_CERT_FILE', 'MQTT_KEY_FILE')
  requireReadableFiles(config, ['MQTT_CA_FILE', 'MQTT_CERT_FILE', 'MQTT_KEY_FILE'])
  const tlsFile = (['MQTT_CA_FILE', 'MQTT_CERT_FILE'] as const).find(
    (variable) => config[variable] !== undefined,
  )
  if (tlsFile && !/^(mqtts|ssl|wss):\/\//.test(config.MQTT_URL)) {
    throw new ConfigError([
      {
        variable: 'MQTT_URL',
        message: `${tlsFile} is set, so an mqtts:// or wss:// URL is expected, got "${config.MQTT_URL}"`,
      },
    ])
  }
  return config
}

export function loadWriterInfluxConfig(env: NodeJS.ProcessEnv = process.env): WriterInfluxConfig {
  return checkInfluxCredentials(withWriterPartitions(withRedisTarget(parseEnv(WriterInfluxEnv, env))))
}

/**
 * `pnpm backup` and `pnpm restore`: the stores the apps name (DATABASE_URL, the InfluxDB writer's
 * variables), the queue whose backlog a backup records, and the tools' own settings.
 */
export const BackupEnv = Type.Object({
  DATABASE_URL: postgresEnv.DATABASE_URL,
  ...redisEnv,
  ...influxEnv,
  INFLUX_BACKUP_HOST: Type.Optional(
    Type.String({
      pattern: '^[^\\s/:]+:\\d{1,5}$',
      description:
        "host:port of InfluxDB 1.x's RPC bind address (influxd backup/restore); unset: INFLUX_URL's host, port 8088",
    }),
  ),
  PG_BIN_DIR: Type.Optional(
    Type.String({
      minLength: 1,
      description: "directory of pg_dump and pg_restore of the server's major version",
    }),
  ),
  BACKUP_SETTLE_MS: Type.Integer({
    minimum: 0,
    maximum: 3_600_000,
    default: 60_000,
    description: 'how long a backup waits for the jobs queued at its start to be stored; 0 does not wait',
  }),
  BACKUP_HOLD_LEASE_MS: Type.Integer({
    minimum: 1_000,
    maximum: 600_000,
    default: 30_000,
    description:
      "the lease of a backup's hold on the writers: renewed every third of it while the backup runs; a backup killed while holding them holds them this long at most",
  }),
})
export type BackupConfig = Static<typeof BackupEnv> & { INFLUX_BACKUP_HOST: string }

/** influxd's RPC service listens on 8088 unless its `bind-address` says otherwise. */
const INFLUXD_RPC_PORT = 8088

export function loadBackupConfig(env: NodeJS.ProcessEnv = process.env): BackupConfig {
  const config = checkInfluxCredentials(withRedisTarget(parseEnv(BackupEnv, env)))
  const influxHost = new URL(config.INFLUX_URL).hostname
  return { ...config, INFLUX_BACKUP_HOST: config.INFLUX_BACKUP_HOST ?? `${influxHost}:${INFLUXD_RPC_PORT}` }
}
