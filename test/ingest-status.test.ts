import { waitFor } from '@iotflow/testkit'
import { expect, it } from 'vitest'
import { usePipelineFixture } from './support/fixture.js'
import { ADMIN_TOKEN } from './support/pipeline.js'

// Group commit queues requests together until 8 points wait (or 1 s passed), so that two devices'
// requests of 3 and 5 points are seen sharing one batch.
const fixture = usePipelineFixture({
  writers: false,
  env: { GROUP_COMMIT_MAX_POINTS: '8', GROUP_COMMIT_LINGER_MS: '1000' },
})

const statusOf = async (batchId: string, headers: Record<string, string>) => {
  const response = await fetch(`${fixture.pipeline.baseUrl}/api/v1/ingest/${batchId}`, { headers })
  return { code: response.status, body: (await response.json()) as Record<string, unknown> }
}

it('follows a batch from queued to stored in both stores, and one a store refuses to failed', async () => {
  const device = await fixture.pipeline.registerDevice()
  const poisoned = await fixture.pipeline.registerDevice()
  const own = { 'x-api-key': device.apiKey }
  const send = async (apiKey: string) => {
    const response = await fixture.pipeline.send(apiKey, {
      points: [{ data: { v: 1 } }, { data: { v: 2 }, timestamp: Date.now() - 1 }],
    })
    return ((await response.json()) as { batch_id: string }).batch_id
  }

  // No writer is running yet: queued everywhere.
  const batchId = await send(device.apiKey)
  expect(await statusOf(batchId, own)).toEqual({
    code: 200,
    body: {
      batch_id: batchId,
      points: 2,
      devices: [{ device_id: device.id, points: 2 }],
      received_at: expect.any(Number),
      status: 'queued',
      stores: { postgres: { status: 'queued', attempts: 0 }, influxdb: { status: 'queued', attempts: 0 } },
    },
  })

  // PostgreSQL will refuse every point of `poisoned` for good (a CHECK constraint of this test's database).
  await fixture.db.sql.unsafe(
    `ALTER TABLE telemetry ADD CONSTRAINT poison CHECK (device_id <> ${poisoned.id}) NOT VALID`,
  )
  const poisonedBatch = await send(poisoned.apiKey)
  await fixture.pipeline.startPostgresWriter()
  await fixture.pipeline.startInfluxWriter()

  const stored = await waitFor(
    async () => {
      const { body } = await statusOf(batchId, own)
      return body.status === 'stored' && body
    },
    { what: 'the batch stored in both' },
  )
  expect(stored.stores).toEqual({
    postgres: { status: 'stored', attempts: 0 },
    influxdb: { status: 'stored', attempts: 0 },
  })

  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` }
  const failed = await waitFor(
    async () => {
      const { body } = await statusOf(poisonedBatch, admin)
      return body.status === 'failed' && body
    },
    { what: 'the poisoned batch to fail' },
  )
  expect(failed.stores).toEqual({
    postgres: { status: 'failed', attempts: 1, error: expect.stringContaining('poison') },
    influxdb: { status: 'stored', attempts: 0 },
  })

  // Another device may not look; an unknown or malformed id is 404 / 400; no credentials 401.
  expect((await statusOf(poisonedBatch, own)).code).toBe(403)
  expect((await statusOf('3f1b0a5e-0000-4000-8000-000000000000', admin)).code).toBe(404)
  expect((await statusOf('not-a-batch', admin)).code).toBe(400)
  expect((await statusOf(batchId, {})).code).toBe(401)
})

it("shows a device only its own share of a batch that carried several devices' requests", async () => {
  const [first, second] = await Promise.all([
    fixture.pipeline.registerDevice(),
    fixture.pipeline.registerDevice(),
  ])
  if (!first || !second) throw new Error('two devices expected')
  const sendPoints = async (apiKey: string, count: number) => {
    const points = Array.from({ length: count }, (_, i) => ({ data: { v: i }, timestamp: Date.now() - i }))
    const response = await fixture.pipeline.send(apiKey, { points })
    expect(response.status).toBe(202)
    return ((await response.json()) as { batch_id: string }).batch_id
  }
  const [firstBatch, secondBatch] = await Promise.all([
    sendPoints(first.apiKey, 3),
    sendPoints(second.apiKey, 5),
  ])
  expect(secondBatch).toBe(firstBatch)

  const admin = await statusOf(firstBatch, { authorization: `Bearer ${ADMIN_TOKEN}` })
  expect(admin.body).toMatchObject({ points: 8 })
  expect(admin.body.devices).toEqual(
    expect.arrayContaining([
      { device_id: first.id, points: 3 },
      { device_id: second.id, points: 5 },
    ]),
  )
  expect((await statusOf(firstBatch, { 'x-api-key': first.apiKey })).body).toMatchObject({
    points: 3,
    devices: [{ device_id: first.id, points: 3 }],
  })
  expect((await statusOf(firstBatch, { 'x-api-key': second.apiKey })).body).toMatchObject({
    points: 5,
    devices: [{ device_id: second.id, points: 5 }],
  })
})
