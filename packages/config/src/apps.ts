import { type Static, Type } from '@sinclair/typebox'
import {
  healthEnv,
  httpEnv,
  loggingEnv,
  postgresEnv,
  redisEnv,
  retentionEnv,
  telemetryEnv,
  writerEnv,
} from './fragments.js'
import { ConfigError, parseEnv } from './parse-env.js'

export const GatewayEnv = Type.Object({
  ...loggingEnv,
  ...httpEnv(8080),
  ...redisEnv,
  ...postgresEnv,
  ...telemetryEnv,
  ...retentionEnv,
  ADMIN_TOKEN: Type.String({ minLength: 16, description: 'at least 16 characters' }),
  BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, maximum: 512 * 1024 * 1024, default: 10 * 1024 * 1024 }),
  API_KEY_CACHE_TTL_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 30_000 }),
  DEVICE_ONLINE_SECONDS: Type.Integer({
    minimum: 1,
    maximum: 86_400,
    default: 300,
    description: 'a device seen within this many seconds is online',
  }),
  LAST_SEEN_FLUSH_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 5_000 }),
  MIGRATE_ON_START: Type.Boolean({ default: true }),
})
export type GatewayConfig = Static<typeof GatewayEnv>

export const WriterPostgresEnv = Type.Object({
  ...loggingEnv,
  ...redisEnv,
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
  ...redisEnv,
  ...writerEnv({ maxBatchPoints: 5_000 }),
  ...healthEnv(9102),
  ...retentionEnv,
  RETENTION_CHECK_INTERVAL_MS: Type.Integer({ minimum: 1000, maximum: 86_400_000, default: 3_600_000 }),
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
})
export type WriterInfluxConfig = Static<typeof WriterInfluxEnv>

export const loadGatewayConfig = (env: NodeJS.ProcessEnv = process.env) => parseEnv(GatewayEnv, env)
export const loadWriterPostgresConfig = (env: NodeJS.ProcessEnv = process.env) =>
  parseEnv(WriterPostgresEnv, env)

export function loadWriterInfluxConfig(env: NodeJS.ProcessEnv = process.env): WriterInfluxConfig {
  const config = parseEnv(WriterInfluxEnv, env)
  if (config.INFLUX_API === 'v2' && !config.INFLUX_TOKEN) {
    throw new ConfigError([{ variable: 'INFLUX_TOKEN', message: 'required when INFLUX_API=v2, got unset' }])
  }
  return config
}
