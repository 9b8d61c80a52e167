import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type DeviceBatch, type DeviceColumns, dataAt, pointCount, toColumns } from './device-columns.js'

const value = fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.string())
const point = fc.record(
  {
    t: fc.integer({ min: 0, max: 2 ** 42 }),
    data: fc.dictionary(fc.constantFrom('a', 'b', 'c', 'gps.lat', 'x y'), value, { minKeys: 1 }),
    type: fc.constantFrom('sensors', 'status'),
    metadata: fc.dictionary(fc.string(), fc.integer()),
  },
  { requiredKeys: ['t', 'data'] },
)
const batch = fc.record(
  {
    device_id: fc.integer({ min: 1 }),
    device_type: fc.constantFrom('sensor', 'gateway'),
    received_at: fc.integer({ min: 0, max: 2 ** 42 }),
    points: fc.array(point, { minLength: 1, maxLength: 20 }),
  },
  { requiredKeys: ['device_id', 'received_at', 'points'] },
) as fc.Arbitrary<DeviceBatch>

describe('device columns', () => {
  it('keep every point of a batch: time, each field with its value, type and metadata', () => {
    fc.assert(
      fc.property(batch, (generated) => {
        // As a producer has it: parsed from JSON (so -0 is already 0).
        const b: DeviceBatch = JSON.parse(JSON.stringify(generated))
        const columns = toColumns(b)
        // What a writer gets: the columns as they come back from the queue's JSON.
        const queued: DeviceColumns = JSON.parse(JSON.stringify(columns))
        expect(pointCount(queued)).toBe(b.points.length)
        expect(queued.device_id).toBe(b.device_id)
        expect(queued.device_type).toBe(b.device_type)
        expect(queued.received_at).toBe(b.received_at)
        b.points.forEach((p, i) => {
          expect(queued.t[i]).toBe(p.t)
          expect(dataAt(queued, i)).toEqual(p.data)
          expect(queued.type?.[i] ?? undefined).toBe(p.type)
          expect(queued.metadata?.[i] ?? undefined).toEqual(p.metadata)
        })
      }),
    )
  })

  it('have one column per field, null where a point lacks it, and no type or metadata column when unused', () => {
    const columns = toColumns({
      device_id: 3,
      received_at: 10,
      points: [
        { t: 1, data: { a: 1 } },
        { t: 2, data: { b: 'x', a: 2 } },
      ],
    })
    expect(columns).toEqual({
      device_id: 3,
      received_at: 10,
      t: [1, 2],
      fields: ['a', 'b'],
      values: [
        [1, 2],
        [null, 'x'],
      ],
    })
  })

  it('are a third of the JSON of the same points as objects, for a typical fleet batch', () => {
    const points = Array.from({ length: 1000 }, (_, i) => ({
      t: 1_800_000_000_000 + i * 1000,
      data: { temperature: 21.53, humidity: 47.5, battery: 80, rssi: -70 },
    }))
    const asPoints = JSON.stringify({ device_id: 1, received_at: 0, points })
    const asColumnsJson = JSON.stringify(toColumns({ device_id: 1, received_at: 0, points }))
    expect(asColumnsJson.length).toBeLessThan(asPoints.length * 0.4)
  })

  it("carry their requests' traceparents when traced, and no such key otherwise", () => {
    const batch: DeviceBatch = { device_id: 1, received_at: 5, points: [{ t: 7, data: { v: 1 } }] }
    const traceparents = [`00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`]
    expect(toColumns({ ...batch, traceparents }).traceparents).toEqual(traceparents)
    expect(toColumns(batch)).not.toHaveProperty('traceparents')
  })
})
