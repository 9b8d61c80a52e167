import { describe, expect, it } from 'vitest'
import { parseTelemetryBody } from './parse-telemetry.js'

const NOW = Date.UTC(2026, 10, 28, 12)

describe('parseTelemetryBody', () => {
  it('accepts one point and uses the receive time when it has no timestamp', () => {
    expect(parseTelemetryBody({ data: { t: 1 } }, NOW)).toEqual({
      ok: true,
      points: [{ t: NOW, data: { t: 1 } }],
    })
  })

  it('accepts {points: [...]} and a bare array, keeping the type', () => {
    const point = { timestamp: NOW, data: { a: 'x', b: false }, type: 'sensors' }
    const expected = { ok: true, points: [{ t: NOW, type: 'sensors', data: { a: 'x', b: false } }] }
    expect(parseTelemetryBody({ points: [point] }, NOW)).toEqual(expected)
    expect(parseTelemetryBody([point], NOW)).toEqual(expected)
  })

  it('reads epoch seconds, epoch milliseconds and ISO-8601 with an offset as the same instant', () => {
    const times = [NOW / 1000, NOW, '2026-11-28T12:00:00Z', '2026-11-28T13:00:00+01:00']
    for (const timestamp of times) {
      const result = parseTelemetryBody({ timestamp, data: { v: 1 } }, NOW)
      expect(result).toEqual({ ok: true, points: [{ t: NOW, data: { v: 1 } }] })
    }
  })

  it('lists every bad point with its path, not just the first', () => {
    const result = parseTelemetryBody(
      {
        points: [
          { data: { ok: 1 } },
          { data: { bad: [1] } },
          { data: {} },
          { timestamp: 'yesterday', data: { v: 1 } },
        ],
      },
      NOW,
    )
    expect(result.ok).toBe(false)
    if (result.ok) return
    expect(result.errors.map((e) => e.path)).toEqual([
      'points[1].data.bad',
      'points[2].data',
      'points[3].timestamp',
    ])
  })

  it('refuses times before 2000 and more than a day ahead', () => {
    for (const timestamp of [0, NOW + 25 * 3600_000]) {
      const result = parseTelemetryBody([{ timestamp, data: { v: 1 } }], NOW)
      expect(result).toMatchObject({ ok: false, errors: [{ path: '[0].timestamp' }] })
    }
  })

  it('refuses unknown keys, empty batches and bodies that are not objects', () => {
    expect(parseTelemetryBody({ data: { v: 1 }, extra: 1 }, NOW)).toMatchObject({
      ok: false,
      errors: [{ path: 'extra' }],
    })
    expect(parseTelemetryBody({ points: [] }, NOW)).toMatchObject({ ok: false, errors: [{ path: 'points' }] })
    expect(parseTelemetryBody([], NOW)).toMatchObject({ ok: false, errors: [{ path: '(body)' }] })
    expect(parseTelemetryBody('text', NOW)).toMatchObject({ ok: false, errors: [{ path: '(body)' }] })
  })
})
