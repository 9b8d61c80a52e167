import type { StoredAlertState } from '@iotflow/db'
import { describe, expect, it } from 'vitest'
import { judge, samplesOf, type ThresholdRule } from './judge.js'

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
