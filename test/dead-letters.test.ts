import { waitFor } from '@iotflow/testkit'
import { expect, it } from 'vitest'
import { dlqReplay as runDlqReplay } from './support/dlq-replay.js'
import { usePipelineFixture } from './support/fixture.js'

// Group commit queues requests together until 53 points wait (or 1 s passed): the second test's
// requests of 3 and 50 points share one queued batch, as requests do under load.
const fixture = usePipelineFixture({
  writers: true,
  env: { GROUP_COMMIT_MAX_POINTS: '53', GROUP_COMMIT_LINGER_MS: '1000' },
})

/** `pnpm dlq:replay` on this pipeline's queues. */
const dlqReplay = (...args: string[]) => runDlqReplay(fixture.pipeline.queuePrefix, ...args)

const pointsAt = (start: number, count: number) =>
  Array.from({ length: count }, (_, i) => ({ timestamp: start + i, data: { level: i + 0.5 } }))

it('a batch InfluxDB refuses lands in the dead-letter set at once with its error, blocks nothing, and is stored once replayed after the fix', async () => {
  const { db, influx, pipeline } = fixture
  const [poisoned, healthy] = [await pipeline.registerDevice(), await pipeline.registerDevice()]
  // Its own week (InfluxDB shard), where `level` already exists as a string: our float is refused.
  const poisonTime = Date.UTC(2020, 0, 8)
  await influx.writeLines([`telemetry,device_id=0 level="text" ${poisonTime}`])

  const refused = await pipeline.send(poisoned.apiKey, { points: pointsAt(poisonTime, 3) })
  expect(refused.status).toBe(202)
  const { batch_id: poisonBatch } = (await refused.json()) as { batch_id: string }
  const good = Date.UTC(2026, 10, 2)
  expect((await pipeline.send(healthy.apiKey, { points: pointsAt(good, 100) })).status).toBe(202)

  // The rest flows: the healthy batch is in InfluxDB, both are in Postgres, one job is dead.
  await waitFor(async () => (await influx.rowsOf(healthy.id)).length === 100, {
    timeoutMs: 15_000,
    what: 'the healthy batch in InfluxDB',
  })
  await waitFor(async () => (await pipeline.queueCounts())['store-influx']?.failed === 1, {
    timeoutMs: 15_000,
    what: 'the poison job in the failed set',
  })
  await waitFor(
    async () => {
      const [row] = await db.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM telemetry WHERE device_id IN (${poisoned.id}, ${healthy.id})`
      return row?.n === 103
    },
    { timeoutMs: 15_000, what: 'both batches, the poison one too, in Postgres' },
  )
  expect(await influx.rowsOf(poisoned.id)).toEqual([])

  const listed = dlqReplay()
  expect(listed.status, listed.stderr).toBe(0)
  expect(listed.stdout).toContain(`batch ${poisonBatch}`)
  expect(listed.stdout).toContain('field type conflict')
  // Refused for good: failed on its first attempt, not after a retry budget.
  expect(listed.stdout).toContain('after 1 attempt(s)')
  expect(listed.stdout).not.toContain('store-postgres job')

  // Fix the cause (drop the conflicting data), then replay.
  expect(await influx.dropShardHolding(poisonTime)).toBe(1)
  const replayed = dlqReplay('--queue', 'store-influx', '--all')
  expect(replayed.status, replayed.stderr).toBe(0)
  expect(replayed.stdout).toContain('1 job(s) replayed')

  const stored = await waitFor(
    async () => {
      const rows = await influx.rowsOf(poisoned.id)
      return rows.length === 3 && rows
    },
    { timeoutMs: 15_000, what: 'the replayed batch in InfluxDB' },
  )
  expect(stored.map((r) => [r.time, r.level])).toEqual(
    pointsAt(poisonTime, 3).map((p) => [p.timestamp, p.data.level]),
  )
  expect((await pipeline.queueCounts())['store-influx']?.failed).toBe(0)

  const again = dlqReplay('--queue', 'store-influx', '--job', 'no-such-job')
  expect(again.status).toBe(1)
  expect(again.stderr).toContain('job no-such-job: not in a failed set')
}, 180_000)

it("when a refused batch shares its job with other devices' requests, only the refused device batch is dead and the rest is stored", async () => {
  const { influx, pipeline } = fixture
  const [poisoned, healthy] = [await pipeline.registerDevice(), await pipeline.registerDevice()]
  const poisonTime = Date.UTC(2020, 1, 12)
  await influx.writeLines([`telemetry,device_id=0 level="text" ${poisonTime}`])
  const failedBefore = (await pipeline.queueCounts())['store-influx']?.failed ?? 0

  const [refused, accepted] = await Promise.all([
    pipeline.send(poisoned.apiKey, { points: pointsAt(poisonTime, 3) }),
    pipeline.send(healthy.apiKey, { points: pointsAt(Date.UTC(2026, 10, 3), 50) }),
  ])
  const [poisonBatch, healthyBatch] = (await Promise.all([refused.json(), accepted.json()])) as {
    batch_id: string
  }[]
  expect(poisonBatch?.batch_id).toBe(healthyBatch?.batch_id)

  await waitFor(async () => (await influx.rowsOf(healthy.id)).length >= 50, {
    timeoutMs: 15_000,
    what: 'the healthy device batch in InfluxDB',
  })
  await waitFor(async () => (await pipeline.queueCounts())['store-influx']?.failed === failedBefore + 1, {
    timeoutMs: 15_000,
    what: 'the shared job in the failed set',
  })
  const listed = dlqReplay()
  expect(listed.stdout).toContain(`batch ${poisonBatch?.batch_id}  device ${poisoned.id}  3 point(s)`)

  expect(await influx.dropShardHolding(poisonTime)).toBe(1)
  expect(dlqReplay('--queue', 'store-influx', '--all').status).toBe(0)
  await waitFor(async () => (await influx.rowsOf(poisoned.id)).length === 3, {
    timeoutMs: 15_000,
    what: 'the replayed device batch in InfluxDB',
  })
}, 120_000)
