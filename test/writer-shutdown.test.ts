import { createTestDatabase, waitFor } from '@iotflow/testkit'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type Pipeline, startPipeline } from './support/pipeline.js'

let db: Awaited<ReturnType<typeof createTestDatabase>>
let pipeline: Pipeline

beforeAll(async () => {
  db = await createTestDatabase()
  pipeline = await startPipeline({
    databaseUrl: db.url,
    influx: { url: 'http://127.0.0.1:8086', database: 'unused' },
    // One point per batch, one write at a time: the jobs behind a stuck write wait in the writer.
    env: { WRITER_MAX_BATCH_POINTS: '1', WRITER_MAX_INFLIGHT_WRITES: '1', WRITER_SHUTDOWN_DRAIN_MS: '500' },
  })
})

afterAll(async () => {
  await pipeline?.close()
  await db?.drop()
})

const storeCounts = async () => (await pipeline.queueCounts())['store-postgres']

it('a writer closing while its write is stuck hands the jobs it has not written back to the queue, at once', async () => {
  const device = await pipeline.registerDevice()
  const first = await pipeline.startPostgresWriter()

  // Another session holds the table: the writer's first write blocks behind it.
  const blocker = await db.sql.reserve()
  await blocker`BEGIN`
  await blocker`LOCK TABLE telemetry IN ACCESS EXCLUSIVE MODE`
  try {
    const base = Date.UTC(2026, 10, 5)
    for (let i = 0; i < 5; i++) {
      const response = await pipeline.send(device.apiKey, { timestamp: base + i, data: { n: i } })
      expect(response.status).toBe(202)
    }
    // It holds points for its writes in flight plus one gathering (1 + 1 here), not every job there is.
    await waitFor(async () => (await storeCounts())?.active === 2, {
      timeoutMs: 10_000,
      what: 'the writer to hold 2 jobs',
    })
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(await storeCounts()).toMatchObject({ active: 2, waiting: 3 })

    const closing = first.close()
    // After the 0.5 s drain deadline the unwritten job is back in `wait`; the stuck one is still active.
    const handedBack = await waitFor(
      async () => {
        const counts = await storeCounts()
        return counts?.waiting === 4 && counts.active === 1 && counts
      },
      { timeoutMs: 5_000, what: '4 jobs handed back' },
    )
    expect(handedBack.failed).toBe(0)
    await blocker`ROLLBACK`
    await closing
  } finally {
    blocker.release()
  }
  const [written] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM telemetry`
  expect(written?.n).toBe(1) // the write that was running finished
  expect(await storeCounts()).toMatchObject({ waiting: 4, active: 0, failed: 0 })

  await pipeline.startPostgresWriter()
  await waitFor(
    async () => {
      const [row] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM telemetry`
      return row?.n === 5
    },
    { timeoutMs: 10_000, what: 'all 5 points stored by the next writer' },
  )
  const counts = await storeCounts()
  expect(counts?.waiting ?? 0).toBe(0)
  expect(counts?.failed).toBe(0)
}, 60_000)
