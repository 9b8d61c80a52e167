import {
  createTestDatabase,
  createTestInfluxDatabase,
  startPrivateMosquitto,
  startPrivateRedis,
  waitFor,
} from '@iotflow/testkit'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { MqttBridge } from '../apps/mqtt-bridge/src/bridge.js'
import { bridgeEnv, bridgeSeries, publishMany, startBridge } from './support/mqtt.js'
import { type Pipeline, startPipeline } from './support/pipeline.js'

/**
 * Redis stops in the middle of a publish run and starts again: the bridge holds the messages it
 * cannot queue unacknowledged, retries, and nothing the broker accepted is lost. The private Redis
 * is durable (fsync'd append-only file), as production Redis must be: a Redis that forgets its data
 * on restart would lose queued jobs whatever the bridge did.
 */
const MESSAGES = 3_000
const T0 = Date.UTC(2026, 10, 26, 0)
let db: Awaited<ReturnType<typeof createTestDatabase>>
let influx: Awaited<ReturnType<typeof createTestInfluxDatabase>>
let redis: Awaited<ReturnType<typeof startPrivateRedis>>
let broker: Awaited<ReturnType<typeof startPrivateMosquitto>>
let pipeline: Pipeline
let bridge: MqttBridge

beforeAll(async () => {
  db = await createTestDatabase()
  influx = await createTestInfluxDatabase()
  redis = await startPrivateRedis({ appendfsync: 'always' })
  broker = await startPrivateMosquitto()
  pipeline = await startPipeline({ databaseUrl: db.url, redisUrl: redis.url, influx })
  await pipeline.startPostgresWriter()
  await pipeline.startInfluxWriter()
})

afterAll(async () => {
  await redis?.start().catch(() => {}) // so that cleanup can reach it
  await bridge?.close()
  await pipeline?.close()
  await broker?.dispose()
  await redis?.dispose()
  await influx?.drop()
  await db?.drop()
})

it('loses nothing when Redis stops during a publish run and starts again', { timeout: 180_000 }, async () => {
  const env = bridgeEnv(
    { databaseUrl: db.url, queuePrefix: pipeline.queuePrefix, redisUrl: redis.url },
    { MQTT_URL: broker.url },
  )
  bridge = await startBridge(env)
  const device = await pipeline.registerDevice()

  let outage: Promise<void> | undefined
  let readinessDuringOutage: Awaited<ReturnType<MqttBridge['ready']>> | undefined
  const published = publishMany(
    broker.url,
    MESSAGES,
    (i) => ({
      topic: `${env.MQTT_TOPIC_ROOT}/devices/${device.id}/telemetry`,
      payload: JSON.stringify({ api_key: device.apiKey, timestamp: T0 + i, data: { seq: i } }),
    }),
    {
      window: 10,
      onAck: (acked) => {
        if (acked !== 1_000) return
        outage = (async () => {
          await redis.stop()
          await new Promise((resolve) => setTimeout(resolve, 2_000))
          readinessDuringOutage = await bridge.ready()
          await redis.start()
        })()
      },
    },
  )
  const { acked, failed } = await published
  await waitFor(() => outage !== undefined, { timeoutMs: 60_000, what: 'the outage to start' })
  await outage

  expect(failed).toBe(0)
  expect(acked).toBe(MESSAGES)
  expect(readinessDuringOutage?.dependencies.redis.status).toBe('down')
  expect(await bridgeSeries(bridge, 'iotflow_mqtt_unavailable_retries_total')).toBeGreaterThan(0) // it really met the outage

  await waitFor(
    async () => {
      const [row] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM telemetry`
      return row?.n === MESSAGES
    },
    { timeoutMs: 120_000, intervalMs: 500, what: 'every message in Postgres' },
  )
  await waitFor(async () => (await influx.rowsOf(device.id)).length === MESSAGES, {
    timeoutMs: 60_000,
    intervalMs: 500,
    what: 'every message in InfluxDB',
  })
  const seqs = new Set((await influx.rowsOf(device.id)).map((r) => r.seq))
  expect(seqs.size).toBe(MESSAGES)
})
