import { createTestDatabase, startPrivateRedis } from '@iotflow/testkit'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type Pipeline, startPipeline } from './support/pipeline.js'

let db: Awaited<ReturnType<typeof createTestDatabase>>
let redis: Awaited<ReturnType<typeof startPrivateRedis>>
let pipeline: Pipeline

beforeAll(async () => {
  db = await createTestDatabase()
  redis = await startPrivateRedis()
  pipeline = await startPipeline({
    databaseUrl: db.url,
    redisUrl: redis.url,
    influx: { url: 'http://127.0.0.1:8086', database: 'unused' },
  })
})

afterAll(async () => {
  await redis?.start().catch(() => {}) // so that cleanup can reach it
  await pipeline?.close()
  await redis?.dispose()
  await db?.drop()
})

it('answers 503 with Retry-After, at once, while Redis is unreachable, and 202 again once it is back', async () => {
  const device = await pipeline.registerDevice()
  const point = { data: { temperature: 20 } }
  expect((await pipeline.send(device.apiKey, point)).status).toBe(202)

  await redis.stop()
  const started = Date.now()
  const refused = await pipeline.send(device.apiKey, point)
  expect(refused.status).toBe(503)
  expect(refused.headers.get('retry-after')).toBe('5')
  expect(await refused.json()).toMatchObject({
    statusCode: 503,
    message: expect.stringContaining('retry later'),
  })
  expect(Date.now() - started).toBeLessThan(2_000)

  await redis.start()
  let status = 0
  for (let attempt = 0; attempt < 50 && status !== 202; attempt++) {
    status = (await pipeline.send(device.apiKey, point)).status
    if (status !== 202) await new Promise((resolve) => setTimeout(resolve, 200))
  }
  expect(status).toBe(202)
})
