import type { StoredAlertState } from '@iotflow/db'
import { describe, expect, it } from 'vitest'
import { judge, type NoDataRule, samplesOf, type ThresholdRule } from './judge.js'

const rule = (overrides: Partial<ThresholdRule> = {}): ThresholdRule => ({
  id: 1,
  name: 'hot',
  kind: 'threshold',
  field: 'temperature',
  condition: '>',
  threshold: 30,
  clear_threshold: null,
  for_seconds: 0,
  no_data_seconds: null,
  severity: 'warning',
  labels: {},
  device_ids: null,
  device_type: null,
  webhook_url: null,
  created_at: '',
  updated_at: '',
  ...overrides,
})
const inactive: StoredAlertState = {
  rule_id: 1,
  device_id: 9,
  state: 'inactive',
  since: null,
  value: null,
  firing_since: null,
  last_point_at: null,
}
const T = 1_800_000_000_000
const series = (...values: number[]) => values.map((value, i) => ({ t: T + i * 1000, value }))
const path = (result: ReturnType<typeof judge>) => result.transitions.map((t) => `${t.from}>${t.to}`)

describe('judging one (rule, device)', () => {
  it('fires once on a crossing and resolves once back under', () => {
    const result = judge(rule(), inactive, series(20, 31, 35, 33, 29, 28))
    expect(path(result)).toEqual(['inactive>firing', 'firing>resolved'])
    expect(result.transitions[0]).toMatchObject({ at: T + 1000, value: 31 })
    expect(result.state).toMatchObject({
      state: 'resolved',
      since: T + 4000,
      firing_since: T + 1000,
      last_point_at: T + 5000,
    })
  })

  it('holds hysteresis: stays firing until past the clear threshold', () => {
    const result = judge(rule({ clear_threshold: 25 }), inactive, series(31, 29, 26, 31, 25))
    expect(path(result)).toEqual(['inactive>firing', 'firing>resolved'])
    expect(result.transitions[1]).toMatchObject({ at: T + 4000, value: 25 })
  })

  it('fires only once the condition held for_seconds by the points’ own times', () => {
    const slow = rule({ for_seconds: 3 })
    expect(path(judge(slow, inactive, series(31, 32, 33)))).toEqual(['inactive>pending'])
    expect(path(judge(slow, inactive, series(31, 32, 33, 34)))).toEqual([
      'inactive>pending',
      'pending>firing',
    ])
    // Broken by a point under the threshold: pending starts over.
    expect(path(judge(slow, inactive, series(31, 32, 20, 33, 34, 35)))).toEqual([
      'inactive>pending',
      'pending>inactive',
      'inactive>pending',
    ])
  })

  it('ignores a point not newer than the last one judged: redelivered and late points change nothing', () => {
    const first = judge(rule(), inactive, series(31))
    const again = judge(rule(), first.state, series(31))
    expect(again.transitions).toEqual([])
    expect(again.state).toBe(first.state)
    const late = judge(rule(), first.state, [{ t: T - 60_000, value: 10 }])
    expect(late.transitions).toEqual([])
  })

  it('leaves the state it was given as it was, and returns that same object when no point is new', () => {
    const given = { ...inactive, last_point_at: T }
    const snapshot = { ...given }
    const result = judge(rule(), given, [...series(20), ...series(20, 31, 29).slice(1)])
    expect(path(result)).toEqual(['inactive>firing', 'firing>resolved'])
    expect(given).toEqual(snapshot)
    const firing = {
      ...inactive,
      state: 'firing' as const,
      since: T,
      firing_since: T,
      last_point_at: T + 5000,
    }
    const unchanged = judge(rule(), firing, series(10, 20))
    expect(unchanged.state).toBe(firing)
    expect(firing).toEqual({
      ...inactive,
      state: 'firing',
      since: T,
      firing_since: T,
      last_point_at: T + 5000,
    })
  })

  it('reads each rule’s field from the queued columns, booleans as 1 and 0, strings not at all', () => {
    const found = samplesOf(
      [
        {
          device_id: 9,
          device_type: 'climate',
          received_at: T,
          t: [T + 2000, T, T + 1000],
          fields: ['temperature', 'door'],
          values: [
            [33, 31, 'n/a'],
            [true, null, false],
          ],
        },
      ],
      [
        rule(),
        rule({ id: 2, field: 'door', condition: '==', threshold: 1 }),
        rule({ id: 3, device_type: 'other' }),
      ],
    )
    expect(found.get('1:9')?.samples).toEqual([
      { t: T, value: 31 },
      { t: T + 2000, value: 33 },
    ])
    expect(found.get('2:9')?.samples).toEqual([
      { t: T + 1000, value: 0 },
      { t: T + 2000, value: 1 },
    ])
    expect(found.has('3:9')).toBe(false)
  })
})

describe('the stream’s half of a no_data rule', () => {
  const noData = { ...rule(), kind: 'no_data', no_data_seconds: 60 } as unknown as NoDataRule
  const firing: StoredAlertState = {
    ...inactive,
    state: 'firing',
    since: T + 60_000,
    firing_since: T + 60_000,
    last_point_at: T,
  }
  const at = (...times: number[]) => times.map((t) => ({ t: T + t, value: null }))

  it('moves the newest point on and makes no transition while not firing', () => {
    const result = judge(noData, inactive, at(0, 5000, 2000))
    expect(path(result)).toEqual([])
    expect(result.state.last_point_at).toBe(T + 5000)
  })

  it('resolves a firing alert at the first point newer than the moment it fired, never at an older one', () => {
    expect(path(judge(noData, firing, at(30_000, 59_000)))).toEqual([])
    const result = judge(noData, firing, at(30_000, 61_000, 62_000))
    expect(path(result)).toEqual(['firing>resolved'])
    expect(result.transitions[0]).toMatchObject({ at: T + 61_000, value: null, firing_since: T + 60_000 })
    expect(result.state).toMatchObject({ state: 'resolved', since: T + 61_000, last_point_at: T + 62_000 })
  })

  it('takes every point of a targeted device, whatever its fields', () => {
    const found = samplesOf(
      [
        {
          device_id: 9,
          received_at: T,
          t: [T, T + 1],
          fields: ['door'],
          values: [['open', null]],
        },
      ],
      [noData],
    )
    expect(found.get('1:9')?.samples.map((s) => s.t)).toEqual([T, T + 1])
  })
})
