import { gzipSync } from 'node:zlib'
import { compareStores } from '@iotflow/verify'
import { describe, expect, it } from 'vitest'
import { usePipelineFixture } from './support/fixture.js'

const fixture = usePipelineFixture()
const T = Date.UTC(2026, 10, 28, 9) // ms
const ns = (ms: number) => `${ms}000000`

/**
 * What Telegraf sends every interval: several measurements of one host at the same timestamp, the
 * same field name in two of them (mem and disk `used_percent`), and two series of one measurement
 * (cpu0, cpu1) naming the same field.
 */
const telegrafBody = (at: number, used: number) =>
  [
    `cpu,cpu=cpu-total,host=edge usage_idle=90.5,usage_user=5.25 ${ns(at)}`,
    `mem,host=edge used_percent=${used},available=8123456789i ${ns(at)}`,
    `disk,device=sda1,fstype=ext4,host=edge,path=/ used_percent=63.25,free=1234567i,inodes_used=12i ${ns(at)}`,
    `system,host=edge load1=0.5,uptime=12345i,n_users=2i ${ns(at)}`,
    `cpu,cpu=cpu0,host=edge usage_core=80 ${ns(at)}`,
    `cpu,cpu=cpu1,host=edge usage_core=70 ${ns(at)}`,
    '',
  ].join('\n')

async function write(body: string, apiKey: string) {
  const response = await fetch(`${fixture.pipeline.baseUrl}/api/v2/write?org=o&bucket=b`, {
    method: 'POST',
    headers: { authorization: `Token ${apiKey}`, 'content-encoding': 'gzip' },
    body: gzipSync(body),
  })
  expect(response.status, await response.text()).toBe(204)
}

describe('line protocol identity: one point per (device, time) in both stores', () => {
  it("Telegraf's measurements of one timestamp merge into one point without losing a field; a retry changes nothing; verify agrees", async () => {
    const device = await fixture.pipeline.registerDevice()
    await write(telegrafBody(T, 41.5) + telegrafBody(T + 10_000, 42), device.apiKey)
    // A retry of the same body, and a JSON point at one of those times.
    await write(telegrafBody(T, 41.5), device.apiKey)
    // Stored first, so that the JSON point is the later write of its time in both stores.
    await fixture.pipeline.drained()
    const json = await fixture.pipeline.send(device.apiKey, {
      timestamp: T + 10_000,
      type: 'json',
      data: { json_v: 1 },
    })
    expect(json.status).toBe(202)
    await fixture.pipeline.drained()

    const fields = (used: number) => ({
      'cpu.usage_idle': 90.5,
      'cpu.usage_user': 5.25,
      'mem.used_percent': used,
      'mem.available': 8123456789,
      'disk.used_percent': 63.25,
      'disk.free': 1234567,
      'disk.inodes_used': 12,
      'system.load1': 0.5,
      'system.uptime': 12345,
      'system.n_users': 2,
      // Two series of one measurement name one field: the later line's value is kept.
      'cpu.usage_core': 70,
    })
    const expected = [
      { t: T, data: fields(41.5) },
      { t: T + 10_000, data: { ...fields(42), json_v: 1 } },
    ]
    const pg = await fixture.db.sql<
      { t: string; type: string; data: Record<string, unknown>; metadata: unknown }[]
    >`
      SELECT (extract(epoch from time) * 1000)::bigint::text AS t, type, data, metadata
      FROM telemetry WHERE device_id = ${device.id} ORDER BY time`
    expect(pg.map((row) => ({ t: Number(row.t), data: row.data }))).toEqual(expected)
    // The type is the measurement of the last line (or point) written at that time; the tags merge.
    expect(pg.map((row) => row.type)).toEqual(['cpu', 'json'])
    expect(pg[0]?.metadata).toEqual({ host: 'edge', cpu: 'cpu1', device: 'sda1', fstype: 'ext4', path: '/' })

    const influx = await fixture.influx.rowsOf(device.id)
    expect(
      influx.map((row) => ({
        t: row.time,
        data: Object.fromEntries(
          Object.entries(row).filter(
            ([name, value]) => name.includes('.') || (name === 'json_v' && value !== null),
          ),
        ),
      })),
    ).toEqual(expected)
    expect(influx.every((row) => row.type === undefined)).toBe(true)

    // `pnpm verify`'s comparison: the same points, no duplicates.
    const comparison = await compareStores(
      fixture.db.sql,
      { url: fixture.influx.url, database: fixture.influx.database },
      { since: T - 1000, until: T + 60_000 },
      [device.id],
    )
    expect(comparison.devices[0]).toMatchObject({
      postgres: { count: 2, duplicates: 0 },
      influx: { count: 2, duplicates: 0 },
      agree: true,
    })
  })
})
