import { spawn } from 'node:child_process'
import { waitFor } from '@iotflow/testkit'
import { expect } from 'vitest'
import type { PipelineFixture } from './fixture.js'

export interface ExpectedPoint {
  t: number
  /** The measurement. */
  type: string
  /** The fields as the line names them; stored as `<measurement>.<field>`. */
  data: Record<string, number | boolean | string>
  metadata?: Record<string, string>
}

/** A line's fields as stored: each named `<measurement>.<field>` (docs/telemetry-contract.md). */
export function storedFields(measurement: string, fields: ExpectedPoint['data']): ExpectedPoint['data'] {
  return Object.fromEntries(Object.entries(fields).map(([name, value]) => [`${measurement}.${name}`, value]))
}

/**
 * Waits until both stores hold exactly `expected` for the device (PostgreSQL: time, type, fields,
 * metadata; InfluxDB: time and fields, each number a float, and no `type` tag), oldest first.
 */
export async function expectInBothStores(fixture: PipelineFixture, deviceId: number, sent: ExpectedPoint[]) {
  const expected = sent.map((point) => ({ ...point, data: storedFields(point.type, point.data) }))
  await waitFor(
    async () =>
      (await fixture.influx.rowsOf(deviceId)).length >= expected.length &&
      (await fixture.db.sql`SELECT 1 FROM telemetry WHERE device_id = ${deviceId}`).length >= expected.length,
    { what: `${expected.length} points of device ${deviceId} in both stores` },
  )
  const pg = await fixture.db.sql<
    { t: string; type: string; data: Record<string, unknown>; metadata: Record<string, string> | null }[]
  >`SELECT (extract(epoch from time) * 1000)::bigint::text AS t, type, data, metadata
    FROM telemetry WHERE device_id = ${deviceId} ORDER BY time`
  expect(
    pg.map((row) => ({
      t: Number(row.t),
      type: row.type,
      data: row.data,
      ...(row.metadata && { metadata: row.metadata }),
    })),
  ).toEqual(expected)

  const influx = await fixture.influx.rowsOf(deviceId)
  const fields = (row: Record<string, unknown>, names: string[]) =>
    Object.fromEntries(names.map((name) => [name, row[name]]))
  expect(
    influx.map((row, i) => ({
      t: row.time,
      type: row.type,
      data: fields(row, Object.keys(expected[i]?.data ?? {})),
    })),
  ).toEqual(expected.map(({ t, data }) => ({ t, type: undefined, data })))
  const types = await fixture.influx.fieldTypes()
  for (const point of expected) {
    for (const [name, value] of Object.entries(point.data)) {
      const want = typeof value === 'number' ? 'float' : typeof value === 'boolean' ? 'boolean' : 'string'
      expect(types[name], `InfluxDB type of ${name}`).toBe(want)
    }
  }
}

export interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs a real client program to its end; `input` goes to its stdin. */
export function run(command: string, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => {
      stdout += chunk
    })
    child.stderr.on('data', (chunk) => {
      stderr += chunk
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(input)
  })
}
