import { connect } from 'node:net'
import { type DeviceColumns, type StoreBatchPayload, toColumns } from '@iotflow/contracts'
import { isConnectionError } from '@iotflow/runtime'
import { createTestDatabase, type TestDatabase } from '@iotflow/testkit'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  type FailureKind,
  RefusedBatchesError,
  UnstoredBatchesError,
  writeIsolatingFailures,
} from './failure-isolation.js'
import type { GatheredItem } from './job-gatherer.js'

/**
 * A real PostgreSQL store: one row per (device, time), idempotent like the writers' upsert, whose
 * CHECK refuses a negative reading for good (a poison batch); a statement that waits on a lock
 * past lock_timeout fails transiently.
 */
let db: TestDatabase
beforeAll(async () => {
  db = await createTestDatabase()
  await db.sql`CREATE TABLE readings (
    device_id int, t bigint, v float8 CHECK (v >= 0), PRIMARY KEY (device_id, t))`
})
afterAll(async () => {
  await db?.drop()
})
beforeEach(async () => {
  await db.sql`TRUNCATE readings`
})

const T0 = Date.UTC(2026, 0, 10)
const batch = (deviceId: number, ...values: number[]): DeviceColumns =>
  toColumns({
    device_id: deviceId,
    received_at: T0,
    points: values.map((v, i) => ({ t: T0 + i, data: { v } })),
  })
const job = (id: string, ...batches: DeviceColumns[]): GatheredItem<StoreBatchPayload> => ({
  id,
  points: batches.reduce((sum, b) => sum + b.t.length, 0),
  value: { batch_id: id, batches },
})

/** The classification of docs/pipeline.md: integrity violations for good, connections unavailable. */
const classify = (error: Error): FailureKind => {
  if (isConnectionError(error)) return 'unavailable'
  return (error as { code?: string }).code?.startsWith('23') ? 'permanent' : 'transient'
}

/** Writes device batches in one statement (as the writers do), counting the statements. */
function storeIn() {
  const store = {
    writes: 0,
    async write(batches: DeviceColumns[]) {
      store.writes++
      const devices: number[] = []
      const times: number[] = []
      const values: number[] = []
      for (const b of batches) {
        b.t.forEach((t, i) => {
          devices.push(b.device_id)
          times.push(t)
          values.push(b.values[0]?.[i] as number)
        })
      }
      await db.sql.begin(async (tx) => {
        await tx`SET LOCAL lock_timeout = '100ms'`
        await tx`INSERT INTO readings (device_id, t, v)
          SELECT * FROM unnest(${devices}::int[], ${times}::bigint[], ${values}::float8[])
          ON CONFLICT (device_id, t) DO UPDATE SET v = excluded.v`
      })
    },
  }
  return store
}

const stored = async () =>
  (
    await db.sql<{ device_id: number; n: number }[]>`
    SELECT device_id, count(*)::int AS n FROM readings GROUP BY device_id ORDER BY device_id`
  ).map((r) => [r.device_id, r.n])

describe('writing gathered jobs, isolating failures', () => {
  it('writes every job in one statement when the store takes them all', async () => {
    const store = storeIn()
    const failures = await writeIsolatingFailures(
      [job('a', batch(1, 1, 2)), job('b', batch(2, 3))],
      store.write,
      classify,
    )
    expect(failures).toBeUndefined()
    expect(store.writes).toBe(1)
    expect(await stored()).toEqual([
      [1, 2],
      [2, 1],
    ])
  })

  it('splits the write until the poison batch fails alone: its job is refused, everything else is stored', async () => {
    const store = storeIn()
    const poison = batch(3, 5, -1)
    const failures = await writeIsolatingFailures(
      [job('a', batch(1, 1)), job('b', batch(2, 2), poison, batch(4, 4)), job('c', batch(5, 5, 6))],
      store.write,
      classify,
    )
    expect([...(failures?.keys() ?? [])]).toEqual(['b'])
    const refused = failures?.get('b')
    expect(refused).toBeInstanceOf(RefusedBatchesError)
    expect((refused as RefusedBatchesError).refused).toEqual([poison])
    expect(refused?.message).toMatch(/^refused for good \(device 3\): .*check constraint/)
    // The poison job's other device batches are stored too; the poison one not even in part.
    expect(await stored()).toEqual([
      [1, 1],
      [2, 1],
      [4, 1],
      [5, 2],
    ])
  })

  it('stops splitting when both halves fail transiently: every job is retried whole, after three writes', async () => {
    const store = storeIn()
    // Another session holds the table: every write waits past its lock_timeout.
    const holder = await db.sql.reserve()
    await holder`BEGIN`
    await holder`LOCK TABLE readings IN ACCESS EXCLUSIVE MODE`
    try {
      const jobs = [job('a', batch(1, 1)), job('b', batch(2, 2)), job('c', batch(3, 3))]
      const failures = await writeIsolatingFailures(jobs, store.write, classify)
      expect(store.writes).toBe(3)
      expect([...(failures?.keys() ?? [])]).toEqual(['a', 'b', 'c'])
      for (const [id, error] of failures ?? []) {
        expect(error).toBeInstanceOf(UnstoredBatchesError)
        expect((error as UnstoredBatchesError).unstored).toEqual(jobs.find((j) => j.id === id)?.value.batches)
        expect(error.message).toMatch(/lock timeout/)
      }
    } finally {
      await holder`ROLLBACK`
      holder.release()
    }
    expect(await stored()).toEqual([])
  })

  it('throws when the store is unreachable, so the whole gathering goes back to the queue', async () => {
    let writes = 0
    // A store client's first step, against a port nobody listens on.
    const unreachable = () => {
      writes++
      return new Promise<void>((_, reject) => connect(1, '127.0.0.1').once('error', reject))
    }
    await expect(
      writeIsolatingFailures([job('a', batch(1, 1)), job('b', batch(2, -1))], unreachable, classify),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    expect(writes).toBe(1)
  })
})
