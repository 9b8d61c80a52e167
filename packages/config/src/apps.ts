import { type Static, Type } from '@sinclair/typebox'
import {
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
  retentionEnv,
  storeJobRetryEnv,
  telemetryEnv,
  writerEnv,
} from './fragments.js'
import { checkInfluxCredentials } from './influx-credentials.js'
import { parseEnv, requireTogether } from './parse-env.js'

export const GatewayEnv = Type.Object({
  ...loggingEnv,
  ...processNiceEnv,
  ...httpEnv(8080),
  ...redisEnv,
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
  ADMIN_TOKEN: Type.String({ minLength: 16, description: 'at least 16 characters' }),
  DEVICE_ONLINE_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 86_400,
    default: 300,
    description: 'a device seen within this many seconds is online',
  }),
  MIGRATE_ON_START: Type.Boolean({ default: true }),
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
})
export type GatewayConfig = Static<typeof GatewayEnv>

export const WriterPostgresEnv = Type.Object({
  ...loggingEnv,
  ...processNiceEnv,
  ...redisEnv,
  ...backlogEnv,
  ...postgresEnv,
  ...writerEnv({ maxBatchPoints: 10_000 }),
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
  ...backlogEnv,
  ...postgresEnv,
  ...telemetryEnv,
  ...bodyLimitEnv,
  ...deviceAuthEnv,
  ...deviceRateEnv,
  ...lastSeenEnv,
  ...retentionEnv,
  ...storeJobRetryEnv,
  ...healthEnv(9103),
  MIGRATE_ON_START: Type.Boolean({ default: true }),
  MQTT_URL: Type.String({
    pattern: '^(mqtts?|tcp|ssl|wss?)://',
    default: 'mqtt://127.0.0.1:1883',
    description: 'an mqtt://, mqtts://, ws:// or wss:// URL',
  }),
  MQTT_USERNAME: Type.Optional(Type.String({ minLength: 1 })),
  MQTT_PASSWORD: Type.Optional(Type.String({ minLength: 1 })),
  MQTT_CLIENT_ID: Name('iotflow-bridge', 48),
  MQTT_SHARE_GROUP: Name('iotflow-bridges', 64),
  MQTT_TOPIC_ROOT: Name('iotflow', 64),
  MQTT_AUTH_MODE: Type.Union([Type.Literal('payload'), Type.Literal('broker')], {
    default: 'payload',
    description: 'payload: api_key in every message; broker: trust the device the broker authenticated',
  }),
  MQTT_CONNECTIONS: Type.Integer({
    minimum: 1,
    maximum: 256,
    default: 128,
    description: 'broker connections of this bridge; each holds one unacknowledged message at a time',
  }),
  MQTT_SESSION_EXPIRY_SECONDS: Type.Integer({ minimum: 60, maximum: 4_294_967_295, default: 7 * 86400 }),
  MQTT_GROUP_COMMIT_MAX_POINTS: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1_000 }),
  MQTT_GROUP_COMMIT_LINGER_MS: Type.Integer({ minimum: 0, maximum: 1000, default: 4 }),
  MQTT_GROUP_COMMIT_MAX_INFLIGHT: Type.Integer({ minimum: 1, maximum: 64, default: 2 }),
})
export type MqttBridgeConfig = Static<typeof MqttBridgeEnv>

export const loadGatewayConfig = (env: NodeJS.ProcessEnv = process.env) => parseEnv(GatewayEnv, env)
export const loadWriterPostgresConfig = (env: NodeJS.ProcessEnv = process.env) =>
  parseEnv(WriterPostgresEnv, env)

export function loadMqttBridgeConfig(env: NodeJS.ProcessEnv = process.env): MqttBridgeConfig {
  const config = parseEnv(MqttBridgeEnv, env)
  requireTogether(config, 'MQTT_USERNAME', 'MQTT_PASSWORD')
  return config
}

export function loadWriterInfluxConfig(env: NodeJS.ProcessEnv = process.env): WriterInfluxConfig {
  return checkInfluxCredentials(parseEnv(WriterInfluxEnv, env))
}
