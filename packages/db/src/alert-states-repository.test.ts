import { createTestDatabase, type TestDatabase } from '@iotflow/testkit'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type AlertDecision,
  createAlertStatesRepository,
  type StoredAlertState,
} from './alert-states-repository.js'

let db: TestDatabase
const ruleIds: number[] = []
const deviceIds: number[] = []
beforeAll(async () => {
  db = await createTestDatabase()
  const devices = await db.sql<{ id: number }[]>`
    INSERT INTO devices (name, api_key_hash, api_key_prefix)
    SELECT 'states-' || i, decode(md5(i::text), 'hex'), 'iot_' FROM generate_series(1, 12) AS i RETURNING id`
  deviceIds.push(...devices.map((d) => d.id).sort((a, b) => a - b))
  const rules = await db.sql<{ id: number }[]>`
    INSERT INTO alert_rules (name, field, condition, threshold)
    SELECT 'states rule ' || i, 'temperature', '>', 50 FROM generate_series(1, 4) AS i RETURNING id`
  ruleIds.push(...rules.map((r) => r.id).sort((a, b) => a - b))
})
afterAll(async () => {
  await db?.drop()
})

/** Moves every locked state to point `t`, an inactive one firing there (one transition). */
const fireAt =
  (t: number, seen?: StoredAlertState[][]) =>
  (states: StoredAlertState[]): AlertDecision => {
    seen?.push(states)
    const decision: AlertDecision = { states: [], transitions: [] }
    for (const state of states) {
      if (state.last_point_at !== null && t <= state.last_point_at) continue
      const fires = state.state === 'inactive'
      decision.states.push({
        ...state,
        last_point_at: t,
        ...(fires && { state: 'firing', since: t, firing_since: t }),
      })
      if (fires)
        decision.transitions.push({
          ...state,
          from: 'inactive',
          to: 'firing',
          at: t,
          value: 60,
          firing_since: t,
        })
    }
    return decision
  }

const key = (rule_id: number, device_id: number) => ({ rule_id, device_id })

describe('alert states repository: evaluate', () => {
  it('creates the missing states, skips the keys of a rule that no longer exists, and stores the decision', async () => {
    const states = createAlertStatesRepository(db.sql)
    const rule = ruleIds[0] as number
    const seen: StoredAlertState[][] = []
    const fired = await states.evaluate(
      [
        key(rule, deviceIds[1] as number),
        key(999_999, deviceIds[0] as number),
        key(rule, deviceIds[0] as number),
      ],
      fireAt(1_000, seen),
    )
    expect(fired).toBe(2)
    const judged = seen.at(-1) ?? []
    expect(judged.map((s) => [s.rule_id, s.device_id, s.state, s.last_point_at])).toEqual([
      [rule, deviceIds[0], 'inactive', null],
      [rule, deviceIds[1], 'inactive', null],
    ])
    const rows = await db.sql`
      SELECT device_id, state, last_point_at FROM alert_states WHERE rule_id = ${rule} ORDER BY device_id`
    expect(rows.map((r) => [r.device_id, r.state, (r.last_point_at as Date).getTime()])).toEqual([
      [deviceIds[0], 'firing', 1_000],
      [deviceIds[1], 'firing', 1_000],
    ])
    // Judged again with the same point (a redelivered batch): nothing changes.
    expect(await states.evaluate([key(rule, deviceIds[0] as number)], fireAt(1_000))).toBe(0)
    const [count] = await db.sql`SELECT count(*)::int AS n FROM alert_transitions WHERE rule_id = ${rule}`
    expect(count?.n).toBe(2)
  })

  it('judges existing states without an INSERT into alert_states, in one transaction of four statements', async () => {
    const queries: string[] = []
    const sql = postgres(db.url, { max: 1, onnotice: () => {}, debug: (_c, query) => queries.push(query) })
    try {
      const states = createAlertStatesRepository(sql)
      const keys = [
        key(ruleIds[1] as number, deviceIds[2] as number),
        key(ruleIds[1] as number, deviceIds[3] as number),
      ]
      await states.evaluate(keys, fireAt(1_000))
      queries.length = 0
      await states.evaluate(keys, fireAt(2_000))
      expect(queries.some((q) => /INSERT INTO alert_states/.test(q))).toBe(false)
      expect(queries.map((q) => q.trim().split(/\s+/)[0]?.toUpperCase())).toEqual([
        'BEGIN',
        'SELECT',
        'WITH',
        'COMMIT',
      ])
      const rows = await sql`SELECT last_point_at FROM alert_states WHERE rule_id = ${ruleIds[1] as number}`
      expect(rows.map((r) => (r.last_point_at as Date).getTime())).toEqual([2_000, 2_000])
    } finally {
      await sql.end({ timeout: 5 })
    }
  })

  it('lets concurrent evaluations of overlapping keys, new and existing, all complete: one transition per key', async () => {
    const pools = Array.from({ length: 4 }, () => postgres(db.url, { max: 2, onnotice: () => {} }))
    try {
      const rule = ruleIds[2] as number
      const other = ruleIds[3] as number
      // Half the keys exist before, half are created by whichever evaluation comes first.
      await createAlertStatesRepository(db.sql).evaluate(
        deviceIds.filter((_, i) => i % 2 === 0).map((d) => key(rule, d)),
        () => ({ states: [], transitions: [] }),
      )
      const allKeys = deviceIds.flatMap((d) => [key(rule, d), key(other, d)])
      const evaluations = Array.from({ length: 40 }, (_, i) => {
        const pool = pools[i % pools.length] as postgres.Sql
        const keys = allKeys.filter((_, k) => (k * 7 + i) % 3 !== 0).reverse()
        return createAlertStatesRepository(pool).evaluate(keys, fireAt(1_000 + i))
      })
      const fired = (await Promise.all(evaluations)).reduce((a, b) => a + b, 0)
      const [count] = await db.sql`
        SELECT count(*)::int AS n, count(DISTINCT (rule_id, device_id))::int AS keys
        FROM alert_transitions WHERE rule_id IN (${rule}, ${other})`
      expect(fired).toBe(allKeys.length)
      expect(count).toEqual({ n: allKeys.length, keys: allKeys.length })
    } finally {
      await Promise.all(pools.map((pool) => pool.end({ timeout: 5 })))
    }
  })
})
