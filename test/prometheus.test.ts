import {
  createTestDatabase,
  createTestInfluxDatabase,
  startPrivatePrometheus,
  waitFor,
} from '@iotflow/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startWritersWithEndpoints } from './support/metrics-endpoints.js'
import { bridgeEnv, publishMany, sharedBrokerUrl, spawnBridge } from './support/mqtt.js'
import { type Pipeline, startPipeline } from './support/pipeline.js'

let db: Awaited<ReturnType<typeof createTestDatabase>>
let influx: Awaited<ReturnType<typeof createTestInfluxDatabase>>
let pipeline: Pipeline
let endpoints: Awaited<ReturnType<typeof startWritersWithEndpoints>>
let prometheus: Awaited<ReturnType<typeof startPrivatePrometheus>>
let bridge: Awaited<ReturnType<typeof spawnBridge>>
let topicRoot: string

beforeAll(async () => {
  db = await createTestDatabase()
  influx = await createTestInfluxDatabase()
  pipeline = await startPipeline({ databaseUrl: db.url, influx })
  endpoints = await startWritersWithEndpoints(pipeline)
  // The bridge as its own process (its main.ts), serving /metrics on its health port.
  const env = bridgeEnv({ databaseUrl: db.url, queuePrefix: pipeline.queuePrefix })
  topicRoot = env.MQTT_TOPIC_ROOT as string
  bridge = await spawnBridge(env)
  prometheus = await startPrivatePrometheus([
    ...endpoints.scrapeTargets(),
    { job: 'mqtt-bridge', address: `127.0.0.1:${bridge.healthPort}` },
  ])
})
afterAll(async () => {
  await prometheus?.dispose()
  await bridge?.kill('SIGTERM')
  await endpoints?.close()
  await pipeline?.close()
  await influx?.drop()
  await db?.drop()
})

describe('Prometheus scraping every app', () => {
  it('sees the gateway, both writers and the MQTT bridge up, and the points they counted', async () => {
    await waitFor(
      async () => {
        const targets = await prometheus.targets()
        return targets.length === 4 && targets.every((t) => t.health === 'up')
      },
      { timeoutMs: 20_000, what: 'four targets up' },
    )
    const device = await pipeline.registerDevice()
    const points = Array.from({ length: 50 }, (_, i) => ({
      timestamp: Date.UTC(2026, 10, 27, 9, 0, i),
      data: { humidity: 40 + i },
    }))
    expect((await pipeline.send(device.apiKey, { points })).status).toBe(202)

    const [accepted, written] = await waitFor(
      async () => {
        const accepted = await prometheus.query(
          'sum by (job) (iotflow_points_accepted_total{transport="http"})',
        )
        const written = await prometheus.query('sum by (job, store) (iotflow_store_points_written_total)')
        return accepted[0]?.value === 50 && written.length === 2 && written.every((s) => s.value === 50)
          ? [accepted, written]
          : undefined
      },
      { timeoutMs: 20_000, what: 'the counted points in Prometheus' },
    )
    expect(accepted).toEqual([{ metric: { job: 'gateway' }, value: 50 }])
    expect(written.map((s) => s.metric).sort((a, b) => String(a.job).localeCompare(String(b.job)))).toEqual([
      { job: 'writer-influx', store: 'influxdb' },
      { job: 'writer-postgres', store: 'postgres' },
    ])
    const up = await prometheus.query('min by (job) (iotflow_dependency_up)')
    expect(up.map((s) => s.value)).toEqual([1, 1, 1, 1])
  })

  it('scrapes the bridge\'s points (transport="mqtt") and its MQTT counters, moving as messages arrive', async () => {
    const device = await pipeline.registerDevice()
    const topic = `${topicRoot}/devices/${device.id}/telemetry`
    const publish = (round: number, count: number) =>
      publishMany(sharedBrokerUrl, count, (i) => ({
        topic,
        payload: JSON.stringify({
          api_key: device.apiKey,
          points: [0, 1].map((p) => ({
            timestamp: Date.UTC(2026, 10, 27, 10, round, i, p),
            data: { level: i },
          })),
        }),
      }))
    const bridgeSeries = async () => {
      const [accepted, messages, points, connected] = await Promise.all(
        [
          'sum(iotflow_points_accepted_total{job="mqtt-bridge",transport="mqtt"})',
          'iotflow_mqtt_messages_received_total{job="mqtt-bridge"}',
          'iotflow_mqtt_points_accepted_total{job="mqtt-bridge"}',
          'iotflow_mqtt_connections{job="mqtt-bridge",state="connected"}',
        ].map(async (query) => (await prometheus.query(query))[0]?.value),
      )
      return { accepted, messages, points, connected }
    }
    const scraped = (expected: Record<string, number | undefined>) =>
      waitFor(
        async () => {
          const series = await bridgeSeries()
          expect(series).toEqual(expected)
          return series
        },
        { timeoutMs: 20_000, what: `the bridge's series at ${JSON.stringify(expected)}` },
      )

    // Scraped before any message: its counters are there, at zero (the labelled one only once used).
    await scraped({ accepted: undefined, messages: 0, points: 0, connected: 4 })
    expect(await publish(1, 20)).toEqual({ acked: 20, failed: 0 })
    await scraped({ accepted: 40, messages: 20, points: 40, connected: 4 })
    expect(await publish(2, 15)).toEqual({ acked: 15, failed: 0 })
    await scraped({ accepted: 70, messages: 35, points: 70, connected: 4 })

    // The writers stored them: points written count the bridge's too (50 from HTTP before).
    await waitFor(
      async () => {
        const written = await prometheus.query('sum by (store) (iotflow_store_points_written_total)')
        return written.length === 2 && written.every((s) => s.value === 50 + 70)
      },
      { timeoutMs: 20_000, what: 'the MQTT points written by both writers' },
    )
    // The gateway counted none of them: transport tells the two apart.
    const http = await prometheus.query('sum(iotflow_points_accepted_total{transport="http"})')
    expect(http.map((s) => s.value)).toEqual([50])
  })
})
