import { Point } from '@influxdata/influxdb-client'
import { fieldNameProblem, parseLineProtocol, tagValueProblem, toColumns } from '@iotflow/contracts'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { batchToLines, MEASUREMENT } from './line-protocol.js'

// Names line protocol can carry exactly: no control characters, no trailing backslash (names.ts).
const fieldName = fc
  .string({ minLength: 1, maxLength: 12, unit: 'binary' })
  .filter((n) => !fieldNameProblem(n, 100))
const tagText = fc
  .string({ minLength: 1, maxLength: 12, unit: 'binary' })
  .filter((n) => !tagValueProblem(n, 100) && n !== '__proto__')
// With the characters line protocol escapes well represented, beside arbitrary Unicode.
const special = fc.constantFrom(' ', ',', '=', '"', '\\', 'a')
const tricky = fc.array(special, { minLength: 1, maxLength: 6 }).map((chars) => `${chars.join('')}x`)
const name = fc.oneof(fieldName, tricky)
const text = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 20 }).filter((s) => !s.includes('\u0000')),
  fc
    .array(fc.constantFrom(' ', ',', '=', '"', '\\', '\n', 'a'), { maxLength: 8 })
    .map((chars) => chars.join('')),
)
const tagString = fc.oneof(tagText, tricky)
const float = fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => (Object.is(v, -0) ? 0 : v))

type Field =
  | { kind: 'float'; value: number }
  | { kind: 'int'; value: number }
  | { kind: 'uint'; value: number }
  | { kind: 'bool'; value: boolean }
  | { kind: 'string'; value: string }
const field: fc.Arbitrary<Field> = fc.oneof(
  float.map((value) => ({ kind: 'float' as const, value })),
  fc.maxSafeInteger().map((value) => ({ kind: 'int' as const, value })),
  fc.maxSafeNat().map((value) => ({ kind: 'uint' as const, value })),
  fc.boolean().map((value) => ({ kind: 'bool' as const, value })),
  text.map((value) => ({ kind: 'string' as const, value })),
)

describe('parseLineProtocol against writers of line protocol', () => {
  it('reads back whatever the InfluxDB client library writes, at every precision', () => {
    const point = fc.record({
      measurement: tagString,
      tags: fc.dictionary(tagString, tagString, { maxKeys: 4 }),
      fields: fc.dictionary(name, field, { minKeys: 1, maxKeys: 5 }),
      ns: fc.bigInt({ min: 0n, max: 4_000_000_000_000_000_000n }),
    })
    const precision = fc.constantFrom('ns', 'us', 'ms', 's') as fc.Arbitrary<'ns' | 'us' | 'ms' | 's'>
    const perUnit = { ns: 1n, us: 1_000n, ms: 1_000_000n, s: 1_000_000_000n }
    fc.assert(
      fc.property(fc.array(point, { minLength: 1, maxLength: 5 }), precision, (points, unit) => {
        const body = points
          .map((p) => {
            const library = new Point(p.measurement).timestamp(String(p.ns / perUnit[unit]))
            for (const [key, value] of Object.entries(p.tags)) library.tag(key, value)
            for (const [key, f] of Object.entries(p.fields)) {
              if (f.kind === 'float') library.floatField(key, f.value)
              else if (f.kind === 'int') library.intField(key, f.value)
              else if (f.kind === 'uint') library.uintField(key, f.value)
              else if (f.kind === 'bool') library.booleanField(key, f.value)
              else library.stringField(key, f.value)
            }
            return library.toLineProtocol()
          })
          .join('\n')
        const parsed = parseLineProtocol(body, unit)
        if (!parsed.ok) throw new Error(parsed.message)
        expect(
          parsed.points.map(({ measurement, tags, fields, timeMs }) => ({
            measurement,
            tags,
            fields,
            timeMs,
          })),
        ).toEqual(
          points.map((p) => ({
            measurement: p.measurement,
            tags: Object.keys(p.tags).length > 0 ? p.tags : undefined,
            fields: Object.fromEntries(Object.entries(p.fields).map(([key, f]) => [key, f.value])),
            timeMs: Number(((p.ns / perUnit[unit]) * perUnit[unit]) / 1_000_000n),
          })),
        )
      }),
      { numRuns: 500 },
    )
  })

  it("reads back the InfluxDB writer's own lines: the stored form of any batch", () => {
    const point = fc.record({
      data: fc.dictionary(fieldName, fc.oneof(float, fc.boolean(), text), { minKeys: 1, maxKeys: 5 }),
      type: fc.option(tagText, { nil: undefined }),
    })
    fc.assert(
      fc.property(fc.array(point, { minLength: 1, maxLength: 4 }), (points) => {
        const batch = {
          batch_id: 'b',
          device_id: 7,
          device_type: 'sensor',
          received_at: 0,
          points: points.map(({ data, type }, i) => ({
            t: 1_700_000_000_000 + i,
            ...(type && { type }),
            data,
          })),
        }
        const parsed = parseLineProtocol(batchToLines(toColumns(batch)).join('\n'), 'ms')
        if (!parsed.ok) throw new Error(parsed.message)
        expect(
          parsed.points.map(({ measurement, tags, fields, timeMs }) => ({
            measurement,
            tags,
            fields,
            timeMs,
          })),
        ).toEqual(
          batch.points.map((p) => ({
            measurement: MEASUREMENT,
            tags: { device_id: '7', device_type: 'sensor' },
            fields: p.data,
            timeMs: p.t,
          })),
        )
      }),
      { numRuns: 500 },
    )
  })
})
