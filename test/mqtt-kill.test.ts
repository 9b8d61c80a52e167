import { queryV1, seriesRows } from '@iotflow/influx'
import { startPrivateMosquitto, uniqueName, waitFor } from '@iotflow/testkit'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { usePipelineFixture } from './support/fixture.js'
import { bridgeEnv, publishMany, spawnBridge } from './support/mqtt.js'

/**
 * SIGKILL the bridge process while a publisher sends 20,000 QoS 1 messages, then start it again:
 * every message the broker accepted is stored exactly once. Messages the bridge had queued but not
 * yet acknowledged are redelivered and merge into the same points (a point is identified by device
 * and timestamp, and each message carries a timestamp of its own). A private Mosquitto, because
 * this depends on its queue limits (the default of 1,000 queued messages per session would drop).
 */
const fixture = usePipelineFixture()
const MESSAGES = 20_000
const T0 = Date.UTC(2026, 10, 28, 0)
let broker: Awaited<ReturnType<typeof startPrivateMosquitto>>
let bridge: Awaited<ReturnType<typeof spawnBridge>> | undefined

beforeAll(async () => {
  broker = await startPrivateMosquitto()
})

afterAll(async () => {
  await bridge?.kill('SIGTERM')
  await broker?.dispose()
})

it('stores every message the broker accepted exactly once across a SIGKILL of the bridge', {
  timeout: 180_000,
}, async () => {
  const device = await fixture.pipeline.registerDevice()
  const env = bridgeEnv(
    { databaseUrl: fixture.db.url, queuePrefix: fixture.pipeline.queuePrefix },
    { MQTT_URL: broker.url, MQTT_CLIENT_ID: uniqueName('killed'), MQTT_SESSION_EXPIRY_SECONDS: '600' },
  )
  const topic = `${env.MQTT_TOPIC_ROOT}/devices/${device.id}/telemetry`
  const storedCount = async () =>
    (
      await fixture.db.sql<
        { n: number }[]
      >`SELECT count(*)::int AS n FROM telemetry WHERE device_id = ${device.id}`
    )[0]?.n ?? 0

  bridge = await spawnBridge(env)
  let killedAt: number | undefined
  let killed: Promise<void> | undefined
  const published = publishMany(
    broker.url,
    MESSAGES,
    (i) => ({
      topic,
      payload: JSON.stringify({ api_key: device.apiKey, timestamp: T0 + i, data: { seq: i } }),
    }),
    {
      window: 50,
      onAck: (acked) => {
        if (acked === 4_000 && bridge) {
          killedAt = acked
          killed = bridge.kill('SIGKILL')
        }
      },
    },
  )
  await waitFor(() => killedAt !== undefined, { timeoutMs: 60_000, what: 'the kill' })
  await killed
  const storedBeforeRestart = await storedCount()
  bridge = await spawnBridge(env)
  const { acked, failed } = await published

  expect(killedAt).toBe(4_000)
  expect(storedBeforeRestart).toBeLessThan(MESSAGES) // it really died mid-run
  expect(failed).toBe(0)
  expect(acked).toBe(MESSAGES)

  await waitFor(async () => (await storedCount()) >= acked, {
    timeoutMs: 120_000,
    intervalMs: 500,
    what: `${acked} points in Postgres`,
  })
  await fixture.pipeline.drained()
  const rows = await fixture.db.sql<{ offset: number; seq: number }[]>`
    SELECT (extract(epoch FROM time) * 1000)::bigint - ${T0} AS offset, (data->>'seq')::int AS seq
    FROM telemetry WHERE device_id = ${device.id}`
  expect(rows.length).toBe(MESSAGES)
  expect(rows.every((r) => Number(r.offset) === r.seq)).toBe(true)
  expect(new Set(rows.map((r) => r.seq)).size).toBe(MESSAGES)

  const influxCount = await waitFor(
    async () => {
      const [row] = seriesRows(
        await queryV1(
          fixture.influx.url,
          fixture.influx.database,
          `SELECT count(seq) FROM telemetry WHERE device_id = '${device.id}'`,
        ),
      )
      return row?.count === MESSAGES && row.count
    },
    { timeoutMs: 60_000, intervalMs: 500, what: 'every point in InfluxDB' },
  )
  expect(influxCount).toBe(MESSAGES)

  // The restarted process counts what it handled itself, at GET /metrics.
  const metrics = await (await fetch(`http://127.0.0.1:${bridge.healthPort}/metrics`)).text()
  const handledAfterRestart = Number(/^iotflow_mqtt_messages_accepted_total (\d+)$/m.exec(metrics)?.[1])
  expect(handledAfterRestart).toBeGreaterThan(0)
  expect(handledAfterRestart).toBeLessThanOrEqual(MESSAGES)
})
