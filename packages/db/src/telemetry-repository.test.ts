import {
  type DeviceBatch,
  type DeviceColumns,
  metadataAt,
  toColumns,
  typeAt,
  upgradeLegacyStorePayload,
} from '@iotflow/contracts'
import { createTestDatabase, mixedSeries, type TestDatabase } from '@iotflow/testkit'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTelemetryRepository } from './telemetry-repository.js'

let db: TestDatabase
beforeAll(async () => {
  db = await createTestDatabase()
})
afterAll(async () => {
  await db?.drop()
})

const DAY = 86_400_000
const T0 = Date.UTC(2026, 0, 10, 23, 59, 59, 500)

const batch = (device_id: number, points: DeviceBatch['points']) =>
  toColumns({ device_id, received_at: T0, points })

const rowsOf = (deviceId: number) =>
  db.sql<{ t: number; type: string | null; data: Record<string, unknown> }[]>`
    SELECT (extract(epoch FROM time) * 1000)::float8 AS t, type, data
    FROM telemetry WHERE device_id = ${deviceId} ORDER BY time`

describe('telemetry repository', () => {
  it('creates the UTC day partitions a batch needs', async () => {
    const repo = createTelemetryRepository(db.sql)
    await repo.writeBatches([
      batch(1, [
        { t: T0, data: { v: 1 } },
        { t: T0 + DAY, data: { v: 2 } },
      ]),
    ])
    const partitions = await db.sql<{ name: string }[]>`
      SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'telemetry'::regclass ORDER BY 1`
    expect(partitions.map((p) => p.name)).toEqual(['telemetry_p20260110', 'telemetry_p20260111'])
  })

  it('is idempotent on (device, timestamp): a repeated batch is stored once', async () => {
    const repo = createTelemetryRepository(db.sql)
    const once = batch(2, [
      { t: T0, data: { v: 1 } },
      { t: T0 + 1, data: { v: 2 } },
    ])
    await repo.writeBatches([once])
    await repo.writeBatches([once, once])
    expect(await rowsOf(2)).toEqual([
      { t: T0, type: null, data: { v: 1 } },
      { t: T0 + 1, type: null, data: { v: 2 } },
    ])
  })

  it('merges the fields and metadata of a point written twice, the later value winning', async () => {
    const repo = createTelemetryRepository(db.sql)
    await repo.writeBatches([batch(3, [{ t: T0, data: { a: 1, b: 'x' }, metadata: { m: '1', n: 'x' } }])])
    // In one call, and across calls.
    await repo.writeBatches([
      batch(3, [
        { t: T0, data: { b: 'y' }, metadata: { n: 'y' } },
        { t: T0, type: 'sensors', data: { c: true } },
        { t: T0, data: { d: 2 }, metadata: { o: 'z' } },
      ]),
    ])
    expect(await rowsOf(3)).toEqual([{ t: T0, type: 'sensors', data: { a: 1, b: 'y', c: true, d: 2 } }])
    const [{ metadata }] = (await db.sql`SELECT metadata FROM telemetry WHERE device_id = 3`) as [
      { metadata: unknown },
    ]
    expect(metadata).toEqual({ m: '1', n: 'y', o: 'z' })
  })

  it('stores a batch queued as columns as it stores the same points queued before columns (upgraded), and keeps the latest value of each field', async () => {
    const repo = createTelemetryRepository(db.sql)
    const points: DeviceBatch['points'] = [
      { t: T0, data: { a: 1.5, s: 'say "hi"\u001e\n' } },
      { t: T0 + 1, type: 'status', data: { b: false }, metadata: { fw: '1.2' } },
      { t: T0 + 2, data: { a: -3, 'x.y': 'z' } },
    ]
    await repo.writeBatches([batch(5, points)])
    const legacy = { batch_id: 'b', batches: [{ device_id: 6, received_at: T0, points }] }
    await repo.writeBatches(upgradeLegacyStorePayload(legacy).batches)
    const asStored = (rows: { t: number; type: string | null; data: Record<string, unknown> }[]) =>
      rows.map(({ t, type, data }) => ({ t: t - T0, type, data }))
    expect(asStored(await rowsOf(5))).toEqual([
      { t: 0, type: null, data: { a: 1.5, s: 'say "hi"\u001e\n' } },
      { t: 1, type: 'status', data: { b: false } },
      { t: 2, type: null, data: { a: -3, 'x.y': 'z' } },
    ])
    expect(asStored(await rowsOf(6))).toEqual(asStored(await rowsOf(5)))
    const [{ metadata }] = (await db.sql`
      SELECT metadata FROM telemetry WHERE device_id = 5 AND metadata IS NOT NULL`) as [{ metadata: unknown }]
    expect(metadata).toEqual({ fw: '1.2' })
    const latest = await db.sql<{ field: string; t: number; value: unknown }[]>`
      SELECT field, (extract(epoch FROM time) * 1000)::float8 - ${T0} AS t, value
      FROM telemetry_latest WHERE device_id = 5 ORDER BY field`
    expect(latest).toEqual([
      { field: 'a', t: 2, value: -3 },
      { field: 'b', t: 1, value: false },
      { field: 's', t: 0, value: 'say "hi"\u001e\n' },
      { field: 'x.y', t: 2, value: 'z' },
    ])
  })

  it('recreates a partition that was dropped after it was first seen', async () => {
    const repo = createTelemetryRepository(db.sql)
    const day = Date.UTC(2026, 2, 1)
    await repo.writeBatches([batch(4, [{ t: day, data: { v: 1 } }])])
    await db.sql`DROP TABLE telemetry_p20260301`
    await repo.writeBatches([batch(4, [{ t: day + 1, data: { v: 2 } }])])
    expect(await rowsOf(4)).toEqual([{ t: day + 1, type: null, data: { v: 2 } }])
  })

  it("creates a new day's partition from many sessions at once without an error", async () => {
    const sessions = postgres(db.url, { max: 20, onnotice: () => {} })
    try {
      for (const day of ['2026-04-01', '2026-04-02', '2026-04-03']) {
        const calls = await Promise.allSettled(
          Array.from({ length: 20 }, () => sessions`SELECT telemetry_ensure_partition(${day}::date)`),
        )
        expect(calls.filter((c) => c.status === 'rejected')).toEqual([])
      }
    } finally {
      await sessions.end()
    }
    const rows = await db.sql<{ name: string }[]>`
      SELECT relname AS name FROM pg_class WHERE relkind = 'r' AND relname LIKE 'telemetry_p2026040%' ORDER BY 1`
    expect(rows.map((r) => r.name)).toEqual([
      'telemetry_p20260401',
      'telemetry_p20260402',
      'telemetry_p20260403',
    ])
  })

  it('stores the same rows by COPY as by INSERT: every column, names and strings of any character, times before 2000 and far ahead', async () => {
    const points: DeviceBatch['points'] = [
      { t: Date.UTC(1999, 11, 31, 23, 59, 59, 999), data: { a: -1.25e-7, b: true } },
      { t: T0, type: 'ünïcode ☃', data: { s: 'tab\there, line\nbreak, back\\slash, "quoted", \u001e 😀' } },
      { t: T0 + 1, data: { 'x.y': 'z', big: 12345678901234 }, metadata: { host: 'edge-box', n: 2 } },
      { t: Date.UTC(2200, 0, 1, 0, 0, 0, 1), type: 'far', data: { v: 0 } },
    ]
    const columnsOf = (deviceId: number) => db.sql<Record<string, unknown>[]>`
      SELECT (extract(epoch FROM time) * 1000)::float8 AS t, type, data, metadata,
             (extract(epoch FROM received_at) * 1000)::float8 AS received
      FROM telemetry WHERE device_id = ${deviceId} ORDER BY time`
    await createTelemetryRepository(db.sql, { copyMinRows: 0 }).writeBatches([batch(20, points)])
    await createTelemetryRepository(db.sql, { copyMinRows: Number.POSITIVE_INFINITY }).writeBatches([
      batch(21, points),
    ])
    const copied = await columnsOf(20)
    expect(copied.map((row) => row.t)).toEqual(points.map((point) => point.t))
    expect(copied[2]).toEqual({
      t: T0 + 1,
      type: null,
      data: { 'x.y': 'z', big: 12345678901234 },
      metadata: { host: 'edge-box', n: 2 },
      received: T0,
    })
    expect(copied).toEqual(await columnsOf(21))
  })

  it('stores mixed series (shared metadata objects, two measurements, points without metadata) alike by COPY, by INSERT and from the per-point shape', async () => {
    const { requests, stored } = mixedSeries(T0)
    // As the queue hands a writer a job: the columns through JSON.
    const queued = (device: number, shape = (c: DeviceColumns): unknown => c) =>
      requests.map((points) => JSON.parse(JSON.stringify(shape(batch(device, points)))))
    const perPoint = (columns: DeviceColumns) => ({
      ...columns,
      type: columns.t.map((_, i) => typeAt(columns, i) ?? null),
      metadata: columns.t.map((_, i) => metadataAt(columns, i) ?? null),
    })
    const copy = createTelemetryRepository(db.sql, { copyMinRows: 0 })
    await copy.writeBatches(queued(30))
    await createTelemetryRepository(db.sql, { copyMinRows: Number.POSITIVE_INFINITY }).writeBatches(
      queued(31),
    )
    await copy.writeBatches(
      upgradeLegacyStorePayload({ batch_id: 'b', batches: queued(32, perPoint) }).batches,
    )
    const storedOf = (deviceId: number) => db.sql<Record<string, unknown>[]>`
      SELECT (extract(epoch FROM time) * 1000)::float8 - ${T0} AS t, type, data, metadata
      FROM telemetry WHERE device_id = ${deviceId} ORDER BY time`
    expect(await storedOf(30)).toEqual(stored)
    expect(await storedOf(31)).toEqual(stored)
    expect(await storedOf(32)).toEqual(stored)
  })

  for (const [pointsWrite, copyMinRows] of [
    ['copy', 0],
    ['insert', Number.POSITIVE_INFINITY],
  ] as const) {
    it(`${pointsWrite}: a write of which some points are stored already merges them, and telemetry_latest keeps each field's newest value`, async () => {
      const device = pointsWrite === 'copy' ? 22 : 23
      const repo = createTelemetryRepository(db.sql, { copyMinRows })
      await repo.writeBatches([
        batch(device, [
          { t: T0, data: { a: 1 } },
          { t: T0 + 1, data: { a: 2, b: 'x' } },
        ]),
      ])
      // The first point again (a redelivered job), with a new field, and a newer point.
      await repo.writeBatches([
        batch(device, [
          { t: T0, data: { c: true } },
          { t: T0 + 2, data: { a: 3 } },
        ]),
      ])
      // An older point after the newer ones: stored, but no field's latest value goes back.
      await repo.writeBatches([batch(device, [{ t: T0 - 1, data: { a: 0, b: 'old' } }])])
      expect(await rowsOf(device)).toEqual([
        { t: T0 - 1, type: null, data: { a: 0, b: 'old' } },
        { t: T0, type: null, data: { a: 1, c: true } },
        { t: T0 + 1, type: null, data: { a: 2, b: 'x' } },
        { t: T0 + 2, type: null, data: { a: 3 } },
      ])
      const latest = await db.sql<{ field: string; t: number; value: unknown }[]>`
        SELECT field, (extract(epoch FROM time) * 1000)::float8 - ${T0} AS t, value
        FROM telemetry_latest WHERE device_id = ${device} ORDER BY field`
      expect(latest).toEqual([
        { field: 'a', t: 2, value: 3 },
        { field: 'b', t: 1, value: 'x' },
        { field: 'c', t: 0, value: true },
      ])
    })
  }

  it('a COPY refused for a stored point gives its connection back: the one connection of a pool serves the merge and the next query', async () => {
    const single = postgres(db.url, { max: 1, onnotice: () => {} })
    try {
      const repo = createTelemetryRepository(single, { copyMinRows: 0 })
      const points = batch(24, [{ t: T0, data: { v: 1 } }])
      await repo.writeBatches([points])
      await repo.writeBatches([points, batch(24, [{ t: T0 + 1, data: { v: 2 } }])])
      expect(await single`SELECT count(*)::int AS n FROM telemetry WHERE device_id = 24`).toEqual([{ n: 2 }])
      const aborted = await db.sql`
        SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND state = 'idle in transaction (aborted)'`
      expect(aborted).toEqual([])
    } finally {
      await single.end({ timeout: 5 })
    }
  })
})
