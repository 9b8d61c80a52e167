import { describe, expect, it } from 'vitest'
import { defaultTelemetryLimits } from './limits.js'
import { parseTelemetryBody } from './parse-telemetry.js'

const NOW = Date.UTC(2026, 10, 28, 12)
const pathsOf = (body: unknown, limits = defaultTelemetryLimits) => {
  const result = parseTelemetryBody(body, NOW, limits)
  return result.ok ? [] : result.errors.map((e) => e.path)
}

describe('parseTelemetryBody', () => {
  it('accepts one point and uses the receive time when it has no timestamp', () => {
    expect(parseTelemetryBody({ data: { t: 1 } }, NOW)).toEqual({
      ok: true,
      base: null,
      points: [{ t: NOW, data: { t: 1 } }],
    })
  })

  it('accepts {points: [...]} and a bare array, keeping type and metadata', () => {
    const point = { timestamp: NOW, data: { a: 'x', b: false }, type: 'sensors', metadata: { fw: '1.2' } }
    const stored = [{ t: NOW, type: 'sensors', data: { a: 'x', b: false }, metadata: { fw: '1.2' } }]
    expect(parseTelemetryBody({ points: [point] }, NOW)).toEqual({ ok: true, base: 'points', points: stored })
    expect(parseTelemetryBody([point], NOW)).toEqual({ ok: true, base: '', points: stored })
  })

  it('reads epoch seconds, epoch milliseconds and ISO-8601 with an offset as the same instant', () => {
    const times = [
      NOW / 1000,
      NOW,
      '2026-11-28T12:00:00Z',
      '2026-11-28T13:00:00+01:00',
      '2026-11-28T07:00:00.000-0500',
    ]
    for (const timestamp of times) {
      expect(parseTelemetryBody({ timestamp, data: { v: 1 } }, NOW)).toMatchObject({
        ok: true,
        points: [{ t: NOW }],
      })
    }
    expect(
      parseTelemetryBody({ timestamp: '2026-11-28T12:00:00.123456Z', data: { v: 1 } }, NOW),
    ).toMatchObject({
      points: [{ t: NOW + 123 }],
    })
  })

  it('refuses dates that do not exist and ISO times without an offset', () => {
    for (const timestamp of [
      '2026-02-30T00:00:00Z',
      '2026-13-01T00:00:00Z',
      '2026-11-28T24:00:00Z',
      '2026-11-28T12:00:00',
    ]) {
      expect(pathsOf({ timestamp, data: { v: 1 } })).toEqual(['timestamp'])
    }
  })

  it('flattens nested objects to dotted names, up to the nesting limit', () => {
    expect(parseTelemetryBody({ data: { gps: { lat: 1.5, lon: 2 }, ok: true } }, NOW)).toMatchObject({
      ok: true,
      points: [{ data: { 'gps.lat': 1.5, 'gps.lon': 2, ok: true } }],
    })
    expect(pathsOf({ data: { a: { b: { c: { d: { e: 1 } } } } } })).toEqual([])
    expect(pathsOf({ data: { a: { b: { c: { d: { e: { f: 1 } } } } } } })).toEqual(['data.a.b.c.d.e'])
    expect(pathsOf({ data: { gps: { lat: 1 }, 'gps.lat': 2 } })).toEqual(['data.gps.lat'])
  })

  it('refuses names InfluxDB reserves or cannot store exactly, naming each', () => {
    expect(pathsOf({ data: { time: 1, _x: 2, device_id: 3, 'tab\there': 4, 'ends\\': 5, ok: 6 } })).toEqual([
      'data.time',
      'data._x',
      'data.device_id',
      'data["tab\\there"]',
      'data["ends\\\\"]',
    ])
  })

  it('accepts names with spaces, commas, equals signs, quotes and unicode', () => {
    const data = { 'temp "in", room=1': 20, '温度🌡': 21 }
    expect(parseTelemetryBody({ data }, NOW)).toMatchObject({ ok: true, points: [{ data }] })
  })

  it('enforces the limits on fields, names, strings and metadata', () => {
    const limits = {
      ...defaultTelemetryLimits,
      maxFields: 2,
      maxFieldNameLength: 5,
      maxStringLength: 3,
      maxMetadataBytes: 10,
    }
    expect(pathsOf({ data: { a: 1, b: 2, c: 3 } }, limits)).toEqual(['data'])
    expect(pathsOf({ data: { abcdef: 1 } }, limits)).toEqual(['data.abcdef'])
    expect(pathsOf({ data: { s: 'abcd' } }, limits)).toEqual(['data.s'])
    expect(pathsOf({ data: { s: 1 }, metadata: { long: 'enough to exceed' } }, limits)).toEqual(['metadata'])
  })

  it('lists every bad point with its path, not just the first', () => {
    const body = {
      points: [
        { data: { ok: 1 } },
        { data: { bad: [1] } },
        { data: {} },
        { timestamp: 'yesterday', data: { v: 1 } },
      ],
    }
    expect(pathsOf(body)).toEqual(['points[1].data.bad', 'points[2].data', 'points[3].timestamp'])
  })

  it('refuses times before 2000 and more than a day ahead', () => {
    for (const timestamp of [0, NOW + 25 * 3600_000])
      expect(pathsOf([{ timestamp, data: { v: 1 } }])).toEqual(['[0].timestamp'])
  })

  it('answers 413 for more points than the limit', () => {
    const result = parseTelemetryBody({ points: [{ data: { v: 1 } }, { data: { v: 2 } }] }, NOW, {
      ...defaultTelemetryLimits,
      maxPoints: 1,
    })
    expect(result).toMatchObject({ ok: false, status: 413, errors: [{ path: 'points' }] })
  })

  it('refuses unknown keys, empty batches and bodies that are not objects', () => {
    expect(pathsOf({ data: { v: 1 }, extra: 1 })).toEqual(['extra'])
    expect(pathsOf({ points: [] })).toEqual(['points'])
    expect(pathsOf([])).toEqual(['(body)'])
    expect(pathsOf('text')).toEqual(['(body)'])
    expect(pathsOf([1])).toEqual(['[0]'])
  })
})
