import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  type DeviceBatch,
  type DeviceColumns,
  dataAt,
  deviceColumnsProblem,
  metadataAt,
  pointCount,
  toColumns,
  typeAt,
} from './device-columns.js'

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
        expect(deviceColumnsProblem(queued)).toBeUndefined()
        expect(queued.device_id).toBe(b.device_id)
        expect(queued.device_type).toBe(b.device_type)
        expect(queued.received_at).toBe(b.received_at)
        b.points.forEach((p, i) => {
          expect(queued.t[i]).toBe(p.t)
          expect(dataAt(queued, i)).toEqual(p.data)
          expect(typeAt(queued, i)).toBe(p.type)
          expect(metadataAt(queued, i)).toEqual(p.metadata)
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

  it('carry each distinct type and each metadata object (by reference) once, and a single one without indexes', () => {
    const edge = { host: 'edge-box' }
    const core = { host: 'core', rack: 2 }
    const columns = toColumns({
      device_id: 3,
      received_at: 10,
      points: [
        { t: 1, type: 'cpu', data: { a: 1 }, metadata: edge },
        { t: 2, type: 'mem', data: { a: 2 }, metadata: core },
        { t: 3, type: 'cpu', data: { a: 3 } },
        { t: 4, type: 'cpu', data: { a: 4 }, metadata: edge },
        // Equal to `edge` but another object: told apart by reference only, never by content.
        { t: 5, type: 'cpu', data: { a: 5 }, metadata: { host: 'edge-box' } },
      ],
    })
    expect(columns.type).toEqual({ values: ['cpu', 'mem'], at: [0, 1, 0, 0, 0] })
    expect(columns.metadata).toEqual({ values: [edge, core, edge], at: [0, 1, -1, 0, 2] })
    expect(columns.metadata?.values[0]).toBe(edge)
    const shared = toColumns({
      device_id: 3,
      received_at: 10,
      points: [1, 2, 3].map((t) => ({ t, type: 'environment', data: { v: t }, metadata: edge })),
    })
    expect(shared.type).toEqual({ values: ['environment'] })
    expect(shared.metadata).toEqual({ values: [edge] })
    // One value, but not on every point: indexes.
    const partly = toColumns({
      device_id: 3,
      received_at: 10,
      points: [
        { t: 1, data: { v: 1 }, metadata: edge },
        { t: 2, data: { v: 2 } },
      ],
    })
    expect(partly.metadata).toEqual({ values: [edge], at: [0, -1] })
    expect(partly).not.toHaveProperty('type')
  })

  it('make a line protocol batch (a type and tags on every point) about as small as the same readings without them', () => {
    const host = { host: 'edge-box' }
    const points = Array.from({ length: 5000 }, (_, i) => ({
      t: 1_800_000_000_000 + i * 1000,
      type: 'environment',
      data: { 'environment.temperature': 21.53, 'environment.humidity': 47.5 },
      metadata: host,
    }))
    const bare = points.map(({ t, data }) => ({ t, data }))
    const withTags = JSON.stringify(toColumns({ device_id: 1, received_at: 0, points })).length
    const without = JSON.stringify(toColumns({ device_id: 1, received_at: 0, points: bare })).length
    expect(withTags - without).toBeLessThan(100)
  })

  it('are unusable when a dictionary does not index every point or indexes beyond its values', () => {
    const columns = toColumns({
      device_id: 3,
      received_at: 10,
      points: [
        { t: 1, type: 'a', data: { v: 1 } },
        { t: 2, type: 'b', data: { v: 2 } },
      ],
    })
    expect(deviceColumnsProblem(columns)).toBeUndefined()
    expect(deviceColumnsProblem({ ...columns, type: { values: ['a'], at: [0] } })).toBe(
      'type/at: not one index per point',
    )
    expect(deviceColumnsProblem({ ...columns, metadata: { values: [{}], at: [0, 1] } })).toBe(
      'metadata/at/1: beyond the values',
    )
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
