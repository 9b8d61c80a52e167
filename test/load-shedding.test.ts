import { connect, type Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { type PipelineFixture, usePipelineFixture } from './support/fixture.js'

const SHED_AFTER_MS = 200
const fixture = usePipelineFixture({ writers: false, env: { INGEST_SHED_AFTER_MS: String(SHED_AFTER_MS) } })

const T0 = Math.floor(Date.now() / 1000) * 1000 - 86_400_000

/** A telemetry request whose body never finishes arriving: it stays in progress until destroyed. */
async function startSlowRequest(baseUrl: string, apiKey: string): Promise<Socket> {
  const { port } = new URL(baseUrl)
  const socket = connect(Number(port), '127.0.0.1')
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject))
  socket.write(
    'POST /api/v1/telemetry HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n' +
      `x-api-key: ${apiKey}\r\ncontent-length: 100\r\n\r\n{"data": {`,
  )
  return socket
}

/**
 * Holds PostgreSQL's field_types table locked until the returned release is called: a telemetry
 * request with a field never seen before waits for it (the gateway looks new fields up there), so
 * it stays in the gateway's hands, body parsed, for as long as the test wants.
 */
async function lockFieldTypes(db: PipelineFixture['db']): Promise<{ release(): Promise<void> }> {
  let release!: () => void
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  let locked!: () => void
  const isLocked = new Promise<void>((resolve) => {
    locked = resolve
  })
  const transaction = db.sql.begin(async (tx) => {
    await tx`LOCK TABLE field_types IN ACCESS EXCLUSIVE MODE`
    locked()
    await released
  })
  await isLocked
  return {
    async release() {
      release()
      await transaction
    },
  }
}

describe('load shedding: the gateway refuses new telemetry while a request in its hands is too old', () => {
  it('answers 503 + Retry-After at once past INGEST_SHED_AFTER_MS, other routes as usual, and accepts again once the old request is done', async () => {
    const { pipeline, db } = fixture
    const device = await pipeline.registerDevice()
    // Nothing in progress: accepted (and the field `v` is known from now on).
    expect((await pipeline.send(device.apiKey, { timestamp: T0, data: { v: 1 } })).status).toBe(202)

    const lock = await lockFieldTypes(db)
    const stuck = pipeline.send(device.apiKey, { timestamp: T0 + 1, data: { never_seen: 1 } })
    await new Promise((resolve) => setTimeout(resolve, SHED_AFTER_MS + 100))

    const started = performance.now()
    const refused = await pipeline.send(device.apiKey, { timestamp: T0 + 2, data: { v: 3 } })
    expect(refused.status).toBe(503)
    expect(refused.headers.get('retry-after')).toMatch(/^[12]$/)
    expect(await refused.json()).toEqual({
      statusCode: 503,
      error: 'Service Unavailable',
      message: 'the gateway is overloaded; nothing was queued, retry later',
    })
    expect(performance.now() - started).toBeLessThan(SHED_AFTER_MS) // told at once, not queued
    // Decided before the body is read: not JSON is refused the same way, not with a 400.
    expect((await pipeline.send(device.apiKey, '{"points": [not json')).status).toBe(503)
    // Only the ingest routes shed.
    expect((await fetch(`${pipeline.baseUrl}/health/ready`)).status).toBe(200)
    const metrics = await (await fetch(`${pipeline.baseUrl}/metrics`)).text()
    expect(metrics).toMatch(/iotflow_ingest_messages_total\{transport="http",outcome="overloaded"\} \d+\n/)

    // The old request done: it was accepted, and new ones are accepted again.
    await lock.release()
    expect((await stuck).status).toBe(202)
    expect((await pipeline.send(device.apiKey, { timestamp: T0 + 3, data: { v: 4 } })).status).toBe(202)
  })

  it('does not count a slow upload: a device sending its body slowly does not make the gateway refuse others', async () => {
    const { pipeline } = fixture
    const device = await pipeline.registerDevice()
    const slow = await startSlowRequest(pipeline.baseUrl, device.apiKey)
    try {
      await new Promise((resolve) => setTimeout(resolve, SHED_AFTER_MS + 100))
      expect((await pipeline.send(device.apiKey, { timestamp: T0 + 10, data: { v: 5 } })).status).toBe(202)
    } finally {
      slow.destroy()
    }
  })
})
