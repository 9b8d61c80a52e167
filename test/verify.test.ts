import { spawnSync } from 'node:child_process'
import { createTestInfluxDatabase, startPrivateInfluxd, waitFor } from '@iotflow/testkit'
import { compareStores } from '@iotflow/verify'
import { expect, it } from 'vitest'
import { usePipelineFixture } from './support/fixture.js'

const fixture = usePipelineFixture()

/** Runs `pnpm verify` (its script) against this test's two stores, or the InfluxDB `env` names. */
function verify(...args: string[]) {
  return verifyWith({}, ...args)
}

function verifyWith(env: Record<string, string>, ...args: string[]) {
  const result = spawnSync('node', ['--import', 'tsx', 'packages/verify/src/verify-cli.ts', ...args], {
    env: {
      ...process.env,
      DATABASE_URL: fixture.db.url,
      INFLUX_API: 'v1',
      INFLUX_URL: fixture.influx.url,
      INFLUX_DATABASE: fixture.influx.database,
      ...env,
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
  // Read two rows at a time, the same report, to the character.
  expect(verify('--since', since, '--chunk-points', '2')).toEqual(differing)

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
  expect(verify('--since', since, '--chunk-points', '0').status).toBe(2)
}, 180_000)

it('reads a device in windows of at most --chunk-points rows per store, with exactly the result of one read', async () => {
  const { db, influx, pipeline } = fixture
  const base = Date.UTC(2026, 10, 8)
  const device = await pipeline.registerDevice()
  const points = Array.from({ length: 3000 }, (_, i) => ({
    timestamp: base + i * 10,
    data: { v: i, even: i % 2 === 0 },
  }))
  expect((await pipeline.send(device.apiKey, { points })).status).toBe(202)
  await waitFor(async () => (await influx.rowsOf(device.id)).length === 3000, {
    timeoutMs: 30_000,
    what: 'the points in InfluxDB',
  })
  await waitFor(
    async () => {
      const [row] = await db.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM telemetry WHERE device_id = ${device.id}`
      return row?.n === 3000
    },
    { timeoutMs: 30_000, what: 'the points in Postgres' },
  )
  // Differences all along the range: points lost by Postgres, values changed and points added in
  // InfluxDB, and keys InfluxDB holds twice (the same point in another series), some in a row.
  for (let i = 5; i < 3000; i += 97) {
    await db.sql`DELETE FROM telemetry WHERE device_id = ${device.id} AND time = ${new Date(base + i * 10)}`
  }
  const line = (tags: string, fields: string, t: number) =>
    `telemetry,device_id=${device.id},${tags} ${fields} ${t}`
  await influx.writeLines([
    ...Array.from({ length: 20 }, (_, k) => line('device_type=sensor', 'v=-1', base + k * 1500)),
    ...Array.from({ length: 20 }, (_, k) => line('device_type=sensor', 'v=1', base + k * 1500 + 3)),
    ...[7, 8, 9, 700, 2999].map((i) =>
      line('device_type=other', `v=${i},even=${i % 2 === 0}`, base + i * 10),
    ),
  ])

  const sources = [db.sql, { url: influx.url, database: influx.database }] as const
  const range = { since: base, until: base + 3000 * 10 }
  const whole = await compareStores(...sources, range, [device.id], { chunkPoints: 100_000 })
  const chunked = await compareStores(...sources, range, [device.id], { chunkPoints: 7 })
  const [one, many] = [whole.devices[0], chunked.devices[0]]
  expect(one?.windows).toBe(1)
  // 3,000 points, 7 rows at a time: a window per 7 points at most.
  expect(many?.windows).toBeGreaterThanOrEqual(3000 / 7)
  expect({ ...chunked, devices: [{ ...many, windows: 1 }] }).toEqual(whole)
  expect(one).toMatchObject({
    postgres: { count: 3000 - 31, duplicates: 0 },
    influx: { count: 3000 + 20, duplicates: 5 },
    agree: false,
  })
  expect(one?.onlyInPostgres).toEqual([])
  expect(one?.onlyInInflux).toHaveLength(31 + 20)
  expect(one?.differing).toEqual(Array.from({ length: 20 }, (_, k) => base + k * 1500))

  // Two rows at a time, where a key held twice (or three times in a row) fills a whole read.
  const start = { since: base, until: base + 100 }
  const [startWhole, startChunked] = await Promise.all([
    compareStores(...sources, start, [device.id]),
    compareStores(...sources, start, [device.id], { chunkPoints: 2 }),
  ])
  expect(startWhole.devices[0]).toMatchObject({ influx: { count: 11, duplicates: 3 }, windows: 1 })
  expect({ ...startChunked, devices: [{ ...startChunked.devices[0], windows: 1 }] }).toEqual(startWhole)

  // The command line prints the same report whatever the chunk size.
  const args = ['--since', String(range.since), '--until', String(range.until), '--device', String(device.id)]
  const report = verify(...args, '--verbose')
  expect(report.status).toBe(1)
  expect(verify(...args, '--verbose', '--chunk-points', '7')).toEqual(report)
}, 180_000)

it("reads an InfluxDB that requires credentials with the writer's INFLUX_USERNAME/PASSWORD, and says so when they are refused", async () => {
  const influxd = await startPrivateInfluxd({ INFLUXDB_HTTP_AUTH_ENABLED: 'true' })
  try {
    // With no user yet, InfluxDB 1.x takes the first admin's creation without credentials.
    const admin = { INFLUX_USERNAME: 'verifier', INFLUX_PASSWORD: 's3cret pass' }
    const create = await fetch(`${influxd.url}/query`, {
      method: 'POST',
      body: new URLSearchParams({
        q: `CREATE USER verifier WITH PASSWORD 's3cret pass' WITH ALL PRIVILEGES`,
      }),
    })
    expect(create.status).toBe(200)
    const authorization = `Basic ${Buffer.from('verifier:s3cret pass').toString('base64')}`
    const database = await createTestInfluxDatabase(influxd.url, { authorization })
    const base = Date.UTC(2026, 10, 9)
    const deviceId = 2_000_000_000 + Math.floor(Math.random() * 100_000_000)
    await database.writeLines([0, 1, 2].map((i) => `telemetry,device_id=${deviceId} v=${i} ${base + i}`))

    const env = { INFLUX_URL: influxd.url, INFLUX_DATABASE: database.database }
    const args = ['--since', String(base), '--until', String(base + 1000)]
    const read = verifyWith({ ...env, ...admin }, ...args)
    expect(read.status, read.stderr).toBe(1)
    expect(read.stdout).toContain(`device ${deviceId}: DIFFER  postgres 0 points`)
    expect(read.stdout).toContain('influxdb 3 points')
    expect(read.stdout).toContain(`only in influxdb (3): ${new Date(base).toISOString()}`)

    const refused = verifyWith({ ...env, ...admin, INFLUX_PASSWORD: 'wrong' }, ...args)
    expect(refused.status).toBe(3)
    expect(refused.stderr).toMatch(/could not read the stores: InfluxDB query failed: 401/)
    expect(refused.stderr).not.toContain('wrong')
    expect(verifyWith(env, ...args).status).toBe(3)
  } finally {
    await influxd.dispose()
  }
}, 120_000)
