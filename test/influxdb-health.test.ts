import { loadGatewayConfig } from '@iotflow/config'
import { startHealthServer } from '@iotflow/runtime'
import { freePort, serviceUrls } from '@iotflow/testkit'
import { afterAll, expect, it } from 'vitest'
import { buildApp } from '../apps/gateway/src/app.js'
import { usePipelineFixture } from './support/fixture.js'
import { ADMIN_TOKEN } from './support/pipeline.js'

/**
 * GET /api/v1/influxdb/health: InfluxDB as a real InfluxDB writer sees it, asked at the writer's
 * health server, with the real InfluxDB up, an InfluxDB that is not there, and no writer at all.
 */
const fixture = usePipelineFixture({ writers: false })
const closers: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const close of closers.reverse()) await close()
})

/** An InfluxDB writer (`INFLUX_*` overridden by `env`) with its health server; its URL. */
async function writerHealthUrl(env: Record<string, string> = {}) {
  const writer = await fixture.pipeline.startInfluxWriter(env)
  const health = await startHealthServer('127.0.0.1', 0, writer.ready)
  closers.push(() => health.close())
  return `http://127.0.0.1:${health.port}`
}

async function influxHealthFrom(writerUrl: string) {
  const gateway = await buildApp(
    loadGatewayConfig({
      ADMIN_TOKEN,
      DATABASE_URL: fixture.db.url,
      REDIS_URL: serviceUrls.redis,
      QUEUE_PREFIX: fixture.pipeline.queuePrefix,
      MIGRATE_ON_START: 'false',
      INFLUX_WRITER_HEALTH_URL: writerUrl,
    }),
    { logger: false },
  )
  try {
    const response = await gateway.inject({ method: 'GET', url: '/api/v1/influxdb/health' })
    return { status: response.statusCode, body: response.json() }
  } finally {
    await gateway.close()
  }
}

it('is healthy while the writer reaches InfluxDB, and says how many points wait for it', async () => {
  const url = await writerHealthUrl()
  expect(await influxHealthFrom(url)).toEqual({
    status: 200,
    body: {
      status: 'healthy',
      message: 'the InfluxDB writer reaches InfluxDB',
      influxdb: { status: 'up' },
      writer: { status: 'up', url },
      pending_points: 0,
    },
  })
})

it('is unhealthy (503) when the writer cannot reach InfluxDB, with its error', async () => {
  const url = await writerHealthUrl({ INFLUX_URL: `http://127.0.0.1:${await freePort()}` })
  const { status, body } = await influxHealthFrom(url)
  expect(status).toBe(503)
  expect(body).toMatchObject({
    status: 'unhealthy',
    influxdb: { status: 'down', error: expect.stringContaining('ECONNREFUSED') },
    writer: { status: 'up', url },
  })
})

it('is unhealthy (503) when no writer answers', async () => {
  const url = `http://127.0.0.1:${await freePort()}`
  const { status, body } = await influxHealthFrom(url)
  expect(status).toBe(503)
  expect(body).toMatchObject({
    status: 'unhealthy',
    message: 'the InfluxDB writer does not answer; nothing is being written to InfluxDB',
    influxdb: { status: 'unknown' },
    writer: { status: 'down', url },
  })
})
