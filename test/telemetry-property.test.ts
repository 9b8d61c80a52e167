import { keyPath } from '@iotflow/contracts'
import { waitFor } from '@iotflow/testkit'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { usePipelineFixture } from './support/fixture.js'

/**
 * Property-based: any valid payload is stored exactly, in both stores, with the same values; any
 * payload with one fault is refused with a path that points at the fault.
 */
const fixture = usePipelineFixture()

// biome-ignore lint/suspicious/noControlCharactersInRegex: names may not hold control characters
const CONTROL = /[\u0000-\u001f\u007f]/
const text = (maxLength: number) => fc.string({ unit: 'binary', minLength: 1, maxLength })

/** Any name the contract accepts; the prefix fixes its type, so generated payloads never conflict. */
const nameSuffix = text(20).filter((s) => !CONTROL.test(s) && !s.endsWith('\\') && !s.includes('.'))
const field = fc.oneof(
  fc.record({
    name: nameSuffix.map((s) => `n ${s}`),
    value: fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => (Object.is(v, -0) ? 0 : v)),
  }),
  fc.record({ name: nameSuffix.map((s) => `b ${s}`), value: fc.boolean() }),
  fc.record({
    name: nameSuffix.map((s) => `s ${s}`),
    value: fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\u0000')),
  }),
)
const data = fc
  .uniqueArray(field, { minLength: 1, maxLength: 6, selector: (f) => f.name })
  .map((fields) => Object.fromEntries(fields.map((f) => [f.name, f.value])))
const tagValue = text(30).filter((s) => !CONTROL.test(s) && !s.endsWith('\\'))
const points = fc.array(fc.record({ data, type: fc.option(tagValue, { nil: undefined }) }), {
  minLength: 1,
  maxLength: 5,
})
const shape = fc.constantFrom('single', 'batch', 'array')

type Point = { timestamp: number; data: Record<string, unknown>; type?: string }
let clock = Date.UTC(2026, 10, 1)

function bodyOf(kind: string, generated: { data: Record<string, unknown>; type?: string | undefined }[]) {
  const withTimes: Point[] = generated.map((p) => {
    clock += 1000
    return p.type === undefined
      ? { timestamp: clock, data: p.data }
      : { timestamp: clock, data: p.data, type: p.type }
  })
  const list = kind === 'single' ? withTimes.slice(0, 1) : withTimes
  const body = kind === 'single' ? list[0] : kind === 'batch' ? { points: list } : list
  const base = kind === 'single' ? null : kind === 'batch' ? 'points' : ''
  return { body, list, pointPath: (i: number) => (base === null ? '' : `${base}[${i}]`) }
}

describe('telemetry payloads, generated', () => {
  it('stores every valid payload exactly, in both stores', async () => {
    await fc.assert(
      fc.asyncProperty(shape, points, async (kind, generated) => {
        const device = await fixture.pipeline.registerDevice()
        const { body, list } = bodyOf(kind, generated)
        const response = await fixture.pipeline.send(device.apiKey, body)
        expect(response.status, await response.clone().text()).toBe(202)

        const { pg, ifx } = await waitFor(
          async () => {
            const [pgRows, ifxRows] = await Promise.all([
              fixture.db.sql<{ t: number; type: string | null; data: Record<string, unknown> }[]>`
                SELECT (extract(epoch FROM time) * 1000)::float8 AS t, type, data
                FROM telemetry WHERE device_id = ${device.id} ORDER BY time`,
              fixture.influx.rowsOf(device.id),
            ])
            return (
              pgRows.length === list.length && ifxRows.length === list.length && { pg: pgRows, ifx: ifxRows }
            )
          },
          { timeoutMs: 15_000, what: `${list.length} points of device ${device.id} in both stores` },
        )
        list.forEach((point, i) => {
          expect(pg[i]).toEqual({ t: point.timestamp, type: point.type ?? null, data: point.data })
          const row = ifx[i] as Record<string, unknown>
          expect(row.time).toBe(point.timestamp)
          // The type is PostgreSQL's alone: no InfluxDB tag (one series per device).
          expect(row.type ?? undefined).toBeUndefined()
          for (const [name, value] of Object.entries(point.data)) expect(row[name]).toEqual(value)
        })
      }),
      { numRuns: 40 },
    )
  }, 120_000)

  const faults = [
    {
      name: 'null value',
      apply: (p: Point, f: string) => Object.assign(p.data, { [f]: null }),
      at: (f: string) => ['data', f],
    },
    {
      name: 'array value',
      apply: (p: Point, f: string) => Object.assign(p.data, { [f]: [1] }),
      at: (f: string) => ['data', f],
    },
    {
      name: 'bad timestamp',
      apply: (p: Point) => Object.assign(p, { timestamp: 'soon' }),
      at: () => ['timestamp'],
    },
    { name: 'unknown property', apply: (p: Point) => Object.assign(p, { bogus: 1 }), at: () => ['bogus'] },
    {
      name: 'reserved name',
      apply: (p: Point) => Object.assign(p.data, { time: 1 }),
      at: () => ['data', 'time'],
    },
    { name: 'empty data', apply: (p: Point) => Object.assign(p, { data: {} }), at: () => ['data'] },
    {
      name: 'NUL in a string',
      apply: (p: Point, f: string) => Object.assign(p.data, { [f]: 'a\u0000b' }),
      at: (f: string) => ['data', f],
    },
  ]

  it('refuses every payload with one fault, with a path at the fault, and stores none of it', async () => {
    const device = await fixture.pipeline.registerDevice()
    await fc.assert(
      fc.asyncProperty(
        shape,
        points,
        fc.nat(),
        fc.constantFrom(...faults),
        async (kind, generated, pick, fault) => {
          const { body, list, pointPath } = bodyOf(kind, generated)
          const index = pick % list.length
          const point = list[index] as Point
          const fieldName = Object.keys(point.data)[0] as string
          fault.apply(point, fieldName)
          const response = await fixture.pipeline.send(device.apiKey, body)
          expect(response.status).toBe(400)
          const answer = (await response.json()) as { errors: { path: string }[] }
          const expected = fault.at(fieldName).reduce((path, key) => keyPath(path, key), pointPath(index))
          expect(answer.errors.map((e) => e.path)).toEqual([expected])
        },
      ),
      { numRuns: 60 },
    )
    const [stored] = await fixture.db.sql<
      { n: number }[]
    >`SELECT count(*)::int AS n FROM telemetry WHERE device_id = ${device.id}`
    expect(stored?.n).toBe(0)
  })
})
