import { createTestDatabase, startPrivatePostgres } from '@iotflow/testkit'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type Pipeline, startPipeline } from './support/pipeline.js'

let pg: Awaited<ReturnType<typeof startPrivatePostgres>>
let db: Awaited<ReturnType<typeof createTestDatabase>>
let pipeline: Pipeline

beforeAll(async () => {
  pg = await startPrivatePostgres()
  db = await createTestDatabase(pg.url)
  pipeline = await startPipeline({
    databaseUrl: db.url,
    influx: { url: 'http://127.0.0.1:8086', database: 'unused' },
    env: { API_KEY_CACHE_TTL_MS: '200' },
  })
})

afterAll(async () => {
  await pg?.start() // so that cleanup can reach it
  await pipeline?.close()
  await db?.drop()
  await pg?.dispose()
})

it('while PostgreSQL is down, a device seen before keeps sending (202) and an unseen one gets a quick 503, never a 500', async () => {
  const [seen, unseen] = [await pipeline.registerDevice(), await pipeline.registerDevice()]
  const point = { data: { temperature: 20 } }
  expect((await pipeline.send(seen.apiKey, point)).status).toBe(202)

  await pg.stop()
  await new Promise((resolve) => setTimeout(resolve, 300)) // past the cache TTL
  for (const attempt of [1, 2, 3]) {
    const started = Date.now()
    const response = await pipeline.send(seen.apiKey, point)
    expect({ attempt, status: response.status }).toEqual({ attempt, status: 202 })
    expect(Date.now() - started).toBeLessThan(3_000)
  }
  const started = Date.now()
  const refused = await pipeline.send(unseen.apiKey, point)
  expect(refused.status).toBe(503)
  expect(refused.headers.get('retry-after')).toBe('5')
  expect(await refused.json()).toMatchObject({
    message: expect.stringContaining('device registry is unavailable'),
  })
  expect(Date.now() - started).toBeLessThan(3_000)

  await pg.start()
  let status = 0
  for (let attempt = 0; attempt < 100 && status !== 202; attempt++) {
    status = (await pipeline.send(unseen.apiKey, point)).status
    if (status !== 202) await new Promise((resolve) => setTimeout(resolve, 250))
  }
  expect(status).toBe(202)
}, 60_000)
