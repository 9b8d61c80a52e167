import { Point } from '@influxdata/influxdb-client'
import { fieldNameProblem, tagValueProblem, toColumns } from '@iotflow/contracts'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { batchToLines, MEASUREMENT } from './line-protocol.js'

const batch = (points: { t: number; type?: string; data: Record<string, number | boolean | string> }[]) => ({
  batch_id: 'b',
  device_id: 7,
  device_type: 'sensor',
  received_at: 0,
  points,
})

describe('batchToLines', () => {
  it('writes every number as a float, so 50 and 50.5 are one field type', () => {
    expect(
      batchToLines(
        batch([
          { t: 1000, data: { humidity: 50 } },
          { t: 1001, data: { humidity: 50.5 } },
        ]),
      ),
    ).toEqual([
      'telemetry,device_id=7,device_type=sensor humidity=50 1000',
      'telemetry,device_id=7,device_type=sensor humidity=50.5 1001',
    ])
  })

  it('writes booleans and strings with their own types, and no tag for the point type', () => {
    expect(batchToLines(batch([{ t: 5, type: 'sensors', data: { on: true, mode: 'eco' } }]))).toEqual([
      'telemetry,device_id=7,device_type=sensor mode="eco",on=T 5',
    ])
  })

  it('escapes names and values that line protocol treats specially', () => {
    const [line] = batchToLines(
      batch([{ t: 1, type: 'a b,c=d', data: { 'field name,x=y': 'say "hi" \\ ok' } }]),
    )
    expect(line).toBe(
      'telemetry,device_id=7,device_type=sensor field\\ name\\,x\\=y="say \\"hi\\" \\\\ ok" 1',
    )
  })

  it('writes exactly what the InfluxDB client library would, for any names and values', () => {
    // Any name the telemetry contract lets through (it refuses `_…`, controls, a trailing `\\` …).
    const name = fc
      .string({ minLength: 1, maxLength: 12, unit: 'binary' })
      .filter((n) => !fieldNameProblem(n, 100))
    const tag = fc
      .string({ minLength: 1, maxLength: 12, unit: 'binary' })
      .filter((n) => !tagValueProblem(n, 100))
    const value = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.string())
    // Several points of one batch, each with its own fields: the queue carries them as columns.
    const point = fc.record({
      data: fc.dictionary(name, value, { minKeys: 1, maxKeys: 5 }),
      type: fc.option(tag, { nil: undefined }),
    })
    fc.assert(
      fc.property(fc.array(point, { minLength: 1, maxLength: 4 }), (points) => {
        const expected = points.map(({ data }, i) => {
          const library = new Point(MEASUREMENT)
            .tag('device_id', '7')
            .tag('device_type', 'sensor')
            .timestamp(42 + i)
          for (const [field, v] of Object.entries(data)) {
            if (typeof v === 'number') library.floatField(field, v)
            else if (typeof v === 'boolean') library.booleanField(field, v)
            else library.stringField(field, v)
          }
          return library.toLineProtocol({ convertTime: (t) => String(t) })
        })
        const queued = batch(points.map(({ data, type }, i) => ({ t: 42 + i, ...(type && { type }), data })))
        expect(batchToLines(toColumns(queued))).toEqual(expected)
        expect(batchToLines(queued)).toEqual(expected)
      }),
      { numRuns: 500 },
    )
  })
})
