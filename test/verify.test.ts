import { spawnSync } from 'node:child_process'
import { waitFor } from '@iotflow/testkit'
import { expect, it } from 'vitest'
import { usePipelineFixture } from './support/fixture.js'

const fixture = usePipelineFixture()

/** Runs `pnpm verify` (its script) against this test's two stores. */
function verify(...args: string[]) {
  const result = spawnSync('node', ['--import', 'tsx', 'packages/verify/src/verify-cli.ts', ...args], {
    env: {
      ...process.env,
      DATABASE_URL: fixture.db.url,
      INFLUX_URL: fixture.influx.url,
      INFLUX_DATABASE: fixture.influx.database,
    },
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

it('says the stores agree after the pipeline wrote both, and names every point that differs once they do not', async () => {
  const { db, influx, pipeline } = fixture
  const base = Date.UTC(2026, 10, 3)
  const [a, b] = [await pipeline.registerDevice(), await pipeline.registerDevice()]
  for (const device of [a, b]) {
    const points = Array.from({ length: 50 }, (_, i) => ({
      timestamp: base + i,
      data: { v: i * 1.5, ok: true },
    }))
    expect((await pipeline.send(device.apiKey, { points })).status).toBe(202)
  }
  await waitFor(
    async () => (await influx.rowsOf(a.id)).length === 50 && (await influx.rowsOf(b.id)).length === 50,
    { timeoutMs: 15_000, what: 'both batches in InfluxDB' },
  )
  await waitFor(
    async () => {
      const [row] = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM telemetry`
      return row?.n === 100
    },
    { timeoutMs: 15_000, what: 'both batches in Postgres' },
  )

  const since = new Date(base).toISOString()
  const agreeing = verify('--since', since, '--verbose')
  expect(agreeing.status, agreeing.stderr).toBe(0)
  expect(agreeing.stdout).toMatch(
    new RegExp(
      `device ${a.id}: agree {2}postgres 50 points \\(checksum (\\w+)\\) {2}influxdb 50 points \\(checksum \\1\\)`,
    ),
  )
  expect(agreeing.stdout).toContain('postgres 100 points, influxdb 100 points')
  expect(agreeing.stdout).toContain('the stores agree')

  // Break them: a point lost by Postgres, a value changed in InfluxDB, a point only InfluxDB has.
  await db.sql`DELETE FROM telemetry WHERE device_id = ${a.id} AND time = ${new Date(base + 7)}`
  await influx.writeLines([
    `telemetry,device_id=${b.id},device_type=sensor v=999 ${base + 3}`,
    `telemetry,device_id=${b.id},device_type=sensor v=1,ok=true ${base + 60_000}`,
  ])
  const differing = verify('--since', since)
  expect(differing.status).toBe(1)
  expect(differing.stdout).toContain(`device ${a.id}: DIFFER  postgres 49 points`)
  expect(differing.stdout).toContain(`only in influxdb (1): ${new Date(base + 7).toISOString()}`)
  expect(differing.stdout).toContain(`device ${b.id}: DIFFER  postgres 50 points`)
  expect(differing.stdout).toContain(`only in influxdb (1): ${new Date(base + 60_000).toISOString()}`)
  expect(differing.stdout).toContain(`different values (1): ${new Date(base + 3).toISOString()}`)
  expect(differing.stdout).toContain('THE STORES DIFFER')

  // A range that leaves the differences out agrees again.
  const before = verify(
    '--since',
    since,
    '--until',
    new Date(base + 3).toISOString(),
    '--device',
    String(b.id),
  )
  expect(before.status, before.stdout).toBe(0)
  expect(before.stdout).toContain('postgres 3 points, influxdb 3 points')

  expect(verify().status).toBe(2)
}, 180_000)
