import { describe, expect, it } from 'vitest'
import {
  loadAlertEvaluatorConfig,
  loadBackupConfig,
  loadGatewayConfig,
  loadMqttBridgeConfig,
  loadWriterInfluxConfig,
  loadWriterPostgresConfig,
} from './apps.js'
import { ConfigError } from './parse-env.js'
import { redisTargetOf } from './redis-target.js'

const problemsOf = (load: () => unknown) => {
  try {
    load()
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => p.variable)
    throw error
  }
  throw new Error('expected a ConfigError')
}

describe('app configuration', () => {
  it('applies defaults and converts numbers and booleans', () => {
    const config = loadGatewayConfig({
      ADMIN_TOKEN: 'a-long-enough-token',
      PORT: '9000',
      MIGRATE_ON_START: 'false',
    })
    expect(config.PORT).toBe(9000)
    expect(config.MIGRATE_ON_START).toBe(false)
    expect(redisTargetOf(config)).toEqual({ mode: 'single', url: 'redis://127.0.0.1:6379' })
    expect(config.HOST).toBe('127.0.0.1')
  })

  it('names a missing required variable', () => {
    expect(problemsOf(() => loadGatewayConfig({}))).toEqual(['ADMIN_TOKEN'])
  })

  it('names every bad variable, with what was given', () => {
    const env = { ADMIN_TOKEN: 'short', PORT: 'eighty', DATABASE_URL: 'mysql://x' }
    expect(problemsOf(() => loadGatewayConfig(env)).sort()).toEqual(['ADMIN_TOKEN', 'DATABASE_URL', 'PORT'])
    expect(() => loadGatewayConfig(env)).toThrow(/PORT: .*"eighty"/)
  })

  it('limits each device to 1,000 points a second and bursts of 100,000 by default, in the gateway and the bridge', () => {
    const env = { ADMIN_TOKEN: 'a-long-enough-token' }
    for (const config of [loadGatewayConfig(env), loadMqttBridgeConfig({})]) {
      expect(config.DEVICE_RATE_POINTS_PER_SECOND).toBe(1000)
      expect(config.DEVICE_RATE_BURST_POINTS).toBe(100_000)
    }
    const off = loadGatewayConfig({ ...env, DEVICE_RATE_POINTS_PER_SECOND: '0' })
    expect(off.DEVICE_RATE_POINTS_PER_SECOND).toBe(0)
    expect(loadMqttBridgeConfig({ DEVICE_RATE_POINTS_PER_SECOND: '0.5' }).DEVICE_RATE_POINTS_PER_SECOND).toBe(
      0.5,
    )
    expect(
      problemsOf(() =>
        loadGatewayConfig({ ...env, DEVICE_RATE_POINTS_PER_SECOND: '-1', DEVICE_RATE_BURST_POINTS: '0' }),
      ).sort(),
    ).toEqual(['DEVICE_RATE_BURST_POINTS', 'DEVICE_RATE_POINTS_PER_SECOND'])
  })

  it("frees a killed writer's jobs within seconds by default; both settings are named when bad", () => {
    const postgres = loadWriterPostgresConfig({})
    expect([postgres.WRITER_LOCK_DURATION_MS, postgres.WRITER_STALLED_INTERVAL_MS]).toEqual([6_000, 2_000])
    const influx = loadWriterInfluxConfig({ INFLUX_API: 'v1', WRITER_LOCK_DURATION_MS: '30000' })
    expect(influx.WRITER_LOCK_DURATION_MS).toBe(30_000)
    expect(
      problemsOf(() =>
        loadWriterPostgresConfig({ WRITER_LOCK_DURATION_MS: '100', WRITER_STALLED_INTERVAL_MS: 'often' }),
      ).sort(),
    ).toEqual(['WRITER_LOCK_DURATION_MS', 'WRITER_STALLED_INTERVAL_MS'])
  })

  it('keeps three PostgreSQL writes and two InfluxDB writes in flight by default; an override is honoured', () => {
    expect(loadWriterPostgresConfig({}).WRITER_MAX_INFLIGHT_WRITES).toBe(3)
    expect(loadWriterInfluxConfig({ INFLUX_API: 'v1' }).WRITER_MAX_INFLIGHT_WRITES).toBe(2)
    expect(loadWriterPostgresConfig({ WRITER_MAX_INFLIGHT_WRITES: '2' }).WRITER_MAX_INFLIGHT_WRITES).toBe(2)
    expect(problemsOf(() => loadWriterPostgresConfig({ WRITER_MAX_INFLIGHT_WRITES: '0' }))).toEqual([
      'WRITER_MAX_INFLIGHT_WRITES',
    ])
  })

  it('bounds the queue backlog: 1,000,000 points by default, for every app; a bad value is named', () => {
    const env = { ADMIN_TOKEN: 'a-long-enough-token' }
    expect(loadGatewayConfig(env).BACKLOG_MAX_POINTS).toBe(1_000_000)
    expect(loadGatewayConfig(env).INGEST_SHED_AFTER_MS).toBe(200)
    expect(loadGatewayConfig(env).LINE_PROTOCOL_DEVICE_TAG).toBe('device_id')
    expect(loadGatewayConfig({ ...env, LINE_PROTOCOL_DEVICE_TAG: 'host' }).LINE_PROTOCOL_DEVICE_TAG).toBe(
      'host',
    )
    expect(loadMqttBridgeConfig({}).BACKLOG_MAX_POINTS).toBe(1_000_000)
    expect(loadWriterPostgresConfig({}).BACKLOG_MAX_POINTS).toBe(1_000_000)
    expect(loadWriterInfluxConfig({ INFLUX_API: 'v1' }).BACKLOG_MAX_POINTS).toBe(1_000_000)
    expect(loadGatewayConfig({ ...env, BACKLOG_MAX_POINTS: '5000' }).BACKLOG_MAX_POINTS).toBe(5000)
    expect(loadMqttBridgeConfig({ BACKLOG_MAX_POINTS: '250' }).BACKLOG_MAX_POINTS).toBe(250)
    for (const bad of ['0', '-1', 'lots', '2000000000']) {
      expect(problemsOf(() => loadGatewayConfig({ ...env, BACKLOG_MAX_POINTS: bad }))).toEqual([
        'BACKLOG_MAX_POINTS',
      ])
      expect(problemsOf(() => loadMqttBridgeConfig({ BACKLOG_MAX_POINTS: bad }))).toEqual([
        'BACKLOG_MAX_POINTS',
      ])
    }
  })

  it('refuses a fraction for an integer instead of truncating it', () => {
    expect(problemsOf(() => loadWriterPostgresConfig({ WRITER_LINGER_MS: '1.5' }))).toEqual([
      'WRITER_LINGER_MS',
    ])
    expect(loadWriterPostgresConfig({ WRITER_LINGER_MS: ' 15 ' }).WRITER_LINGER_MS).toBe(15)
  })

  it('runs every app at nice 0 unless PROCESS_NICE says otherwise', () => {
    expect(loadWriterPostgresConfig({}).PROCESS_NICE).toBe(0)
    expect(loadWriterInfluxConfig({ INFLUX_API: 'v1' }).PROCESS_NICE).toBe(0)
    expect(loadGatewayConfig({ ADMIN_TOKEN: 'a-long-enough-token' }).PROCESS_NICE).toBe(0)
    expect(loadMqttBridgeConfig({}).PROCESS_NICE).toBe(0)
    expect(loadWriterPostgresConfig({ PROCESS_NICE: '10' }).PROCESS_NICE).toBe(10)
    expect(problemsOf(() => loadWriterPostgresConfig({ PROCESS_NICE: '20' }))).toEqual(['PROCESS_NICE'])
  })

  it('treats an empty value as unset', () => {
    expect(loadWriterPostgresConfig({ WRITER_LINGER_MS: '' }).WRITER_LINGER_MS).toBe(20)
  })

  it('refuses an unknown InfluxDB API and requires a token for v2', () => {
    expect(problemsOf(() => loadWriterInfluxConfig({ INFLUX_API: 'v3' }))).toEqual(['INFLUX_API'])
    expect(problemsOf(() => loadWriterInfluxConfig({ INFLUX_API: 'v2' }))).toEqual(['INFLUX_TOKEN'])
    expect(loadWriterInfluxConfig({ INFLUX_API: 'v1' }).INFLUX_DATABASE).toBe('iotflow')
    expect(problemsOf(() => loadWriterInfluxConfig({ INFLUX_API: 'v1', INFLUX_USERNAME: 'u' }))).toEqual([
      'INFLUX_PASSWORD',
    ])
  })

  it('configures the MQTT bridge: defaults, auth modes, and credentials that go together', () => {
    const config = loadMqttBridgeConfig({})
    expect(config.MQTT_URL).toBe('mqtt://127.0.0.1:1883')
    expect(config.MQTT_AUTH_MODE).toBe('payload')
    expect(config.MQTT_SHARE_GROUP).toBe('iotflow-bridges')
    expect(config.HEALTH_PORT).toBe(9103)
    expect(loadMqttBridgeConfig({ MQTT_AUTH_MODE: 'broker' }).MQTT_AUTH_MODE).toBe('broker')
    expect(problemsOf(() => loadMqttBridgeConfig({ MQTT_AUTH_MODE: 'none' }))).toEqual(['MQTT_AUTH_MODE'])
    expect(problemsOf(() => loadMqttBridgeConfig({ MQTT_URL: 'http://x' }))).toEqual(['MQTT_URL'])
    expect(problemsOf(() => loadMqttBridgeConfig({ MQTT_SHARE_GROUP: 'a/b' }))).toEqual(['MQTT_SHARE_GROUP'])
    expect(problemsOf(() => loadMqttBridgeConfig({ MQTT_USERNAME: 'bridge' }))).toEqual(['MQTT_PASSWORD'])
  })

  it('leaves the store job retry numbers to the queue catalog unless set, and validates them when set', () => {
    const unset = loadGatewayConfig({ ADMIN_TOKEN: 'a-long-enough-token' })
    expect([unset.STORE_JOB_ATTEMPTS, unset.STORE_JOB_BACKOFF_MS]).toEqual([undefined, undefined])
    const set = loadMqttBridgeConfig({ STORE_JOB_ATTEMPTS: '3', STORE_JOB_BACKOFF_MS: '100' })
    expect([set.STORE_JOB_ATTEMPTS, set.STORE_JOB_BACKOFF_MS]).toEqual([3, 100])
    const bad = { ADMIN_TOKEN: 'a-long-enough-token', STORE_JOB_ATTEMPTS: '0', STORE_JOB_BACKOFF_MS: '1.5' }
    expect(problemsOf(() => loadGatewayConfig(bad)).sort()).toEqual([
      'STORE_JOB_ATTEMPTS',
      'STORE_JOB_BACKOFF_MS',
    ])
    expect(() => loadMqttBridgeConfig({ STORE_JOB_ATTEMPTS: 'many' })).toThrow(/STORE_JOB_ATTEMPTS: .*"many"/)
  })

  it('takes TLS files that exist, in pairs, and a CA only with an mqtts:// or wss:// broker', () => {
    const admin = { ADMIN_TOKEN: 'a-long-enough-token' }
    const file = import.meta.filename // any readable file
    const tls = loadGatewayConfig({ ...admin, TLS_CERT_FILE: file, TLS_KEY_FILE: file })
    expect([tls.TLS_CERT_FILE, tls.TLS_KEY_FILE]).toEqual([file, file])
    expect(problemsOf(() => loadGatewayConfig({ ...admin, TLS_CERT_FILE: file }))).toEqual(['TLS_KEY_FILE'])
    expect(
      problemsOf(() => loadGatewayConfig({ ...admin, TLS_CERT_FILE: file, TLS_KEY_FILE: '/nope.key' })),
    ).toEqual(['TLS_KEY_FILE'])
    expect(() => loadGatewayConfig({ ...admin, TLS_CERT_FILE: '/nope.pem', TLS_KEY_FILE: file })).toThrow(
      /TLS_CERT_FILE: cannot read "\/nope.pem"/,
    )

    const mqtts = { MQTT_URL: 'mqtts://broker:8883', MQTT_CA_FILE: file }
    expect(loadMqttBridgeConfig(mqtts).MQTT_CA_FILE).toBe(file)
    expect(problemsOf(() => loadMqttBridgeConfig({ ...mqtts, MQTT_URL: 'mqtt://broker:1883' }))).toEqual([
      'MQTT_URL',
    ])
    expect(problemsOf(() => loadMqttBridgeConfig({ ...mqtts, MQTT_CERT_FILE: file }))).toEqual([
      'MQTT_KEY_FILE',
    ])
    expect(problemsOf(() => loadMqttBridgeConfig({ ...mqtts, MQTT_CA_FILE: '/nope.pem' }))).toEqual([
      'MQTT_CA_FILE',
    ])
  })

  it("configures backup and restore from the apps' variables, with influxd's RPC address beside INFLUX_URL", () => {
    const config = loadBackupConfig({ INFLUX_API: 'v1', INFLUX_URL: 'http://influx.internal:8086' })
    expect(config.DATABASE_URL).toBe('postgres://postgres@127.0.0.1:5432/iotflow')
    expect(config.QUEUE_PREFIX).toBe('iotflow')
    expect(config.INFLUX_DATABASE).toBe('iotflow')
    expect(config.INFLUX_BACKUP_HOST).toBe('influx.internal:8088')
    expect(config.BACKUP_SETTLE_MS).toBe(60_000)
    expect(config.BACKUP_HOLD_LEASE_MS).toBe(30_000)
    expect(config.PG_BIN_DIR).toBeUndefined()
    const set = loadBackupConfig({
      INFLUX_API: 'v1',
      INFLUX_BACKUP_HOST: '127.0.0.1:28088',
      PG_BIN_DIR: '/usr/lib/postgresql/15/bin',
      BACKUP_SETTLE_MS: '0',
    })
    expect([set.INFLUX_BACKUP_HOST, set.PG_BIN_DIR, set.BACKUP_SETTLE_MS]).toEqual([
      '127.0.0.1:28088',
      '/usr/lib/postgresql/15/bin',
      0,
    ])
    expect(
      problemsOf(() => loadBackupConfig({ INFLUX_API: 'v1', INFLUX_BACKUP_HOST: 'http://x:8088' })),
    ).toEqual(['INFLUX_BACKUP_HOST'])
    expect(problemsOf(() => loadBackupConfig({ INFLUX_API: 'v1', BACKUP_SETTLE_MS: '-1' }))).toEqual([
      'BACKUP_SETTLE_MS',
    ])
    expect(loadBackupConfig({ INFLUX_API: 'v1', BACKUP_HOLD_LEASE_MS: '5000' }).BACKUP_HOLD_LEASE_MS).toBe(
      5000,
    )
    // A lease shorter than a second would lapse between renewals on a busy machine.
    expect(problemsOf(() => loadBackupConfig({ INFLUX_API: 'v1', BACKUP_HOLD_LEASE_MS: '500' }))).toEqual([
      'BACKUP_HOLD_LEASE_MS',
    ])
    expect(problemsOf(() => loadBackupConfig({ INFLUX_API: 'v2' }))).toEqual(['INFLUX_TOKEN'])
  })

  it('configures the alert evaluator: Alertmanager on 127.0.0.1:9093, one write at a time, a bad URL named', () => {
    const config = loadAlertEvaluatorConfig({})
    expect(config.ALERTMANAGER_URL).toBe('http://127.0.0.1:9093')
    expect(config.ALERTMANAGER_RESEND_MS).toBe(60_000)
    expect(config.WRITER_MAX_INFLIGHT_WRITES).toBe(1)
    expect(config.HEALTH_PORT).toBe(9104)
    expect(config.ALERT_RULES_REFRESH_MS).toBe(30_000)
    expect(config.MQTT_URL).toBeUndefined() // no MQTT delivery unless asked
    expect(loadAlertEvaluatorConfig({ MQTT_URL: 'mqtt://broker:1883' }).MQTT_TOPIC_ROOT).toBe('iotflow')
    expect(problemsOf(() => loadAlertEvaluatorConfig({ MQTT_URL: 'broker:1883' }))).toEqual(['MQTT_URL'])
    expect(loadGatewayConfig({ ADMIN_TOKEN: 'a-long-enough-token' }).ALERT_RULES_REFRESH_MS).toBe(30_000)
    expect(problemsOf(() => loadAlertEvaluatorConfig({ ALERTMANAGER_URL: 'alertmanager:9093' }))).toEqual([
      'ALERTMANAGER_URL',
    ])
    expect(problemsOf(() => loadMqttBridgeConfig({ ALERT_RULES_REFRESH_MS: '10' }))).toEqual([
      'ALERT_RULES_REFRESH_MS',
    ])
  })
})
