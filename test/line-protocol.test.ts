import { writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { InfluxDB, Point } from '@influxdata/influxdb-client'
import { uniqueName } from '@iotflow/testkit'
import { describe, expect, it } from 'vitest'
import { usePipelineFixture } from './support/fixture.js'
import { expectInBothStores, run } from './support/line-protocol.js'
import { ADMIN_TOKEN } from './support/pipeline.js'

const fixture = usePipelineFixture()
const T = Date.UTC(2026, 10, 27, 10) // ms
const url = () => fixture.pipeline.baseUrl
const port = () => new URL(url()).port

async function file(name: string, content: string | Buffer) {
  const path = join(tmpdir(), `${uniqueName(name)}`)
  await writeFile(path, content)
  return path
}

function post(path: string, body: string | Buffer, headers: Record<string, string>) {
  return fetch(`${url()}${path}`, { method: 'POST', body, headers })
}

describe('line protocol in, from real InfluxDB clients', () => {
  it('@influxdata/influxdb-client WriteApi (v2, gzip): every type, every escape, both stores', async () => {
    const device = await fixture.pipeline.registerDevice()
    const writeApi = new InfluxDB({ url: url(), token: device.apiKey }).getWriteApi(
      'any-org',
      'any-bucket',
      'ns',
      {
        gzipThreshold: 0,
        maxRetries: 0,
      },
    )
    writeApi.writePoints([
      new Point('air quality,room=a')
        .tag('site name,x=y', 'north wing, "A"=1')
        .floatField('v2 temp,c=x', 21.5)
        .intField('v2_count', 3)
        .uintField('v2_big', 7)
        .booleanField('v2_ok', true)
        .stringField('v2_note', 'say "hi" \\ back, a=b c')
        .timestamp(`${T}123456`),
      new Point('air quality,room=a').floatField('v2 temp,c=x', 22).timestamp(`${T + 1}999999`),
    ])
    await writeApi.close()
    await expectInBothStores(fixture, device.id, [
      {
        t: T,
        type: 'air quality,room=a',
        data: {
          'v2 temp,c=x': 21.5,
          v2_count: 3,
          v2_big: 7,
          v2_ok: true,
          v2_note: 'say "hi" \\ back, a=b c',
        },
        metadata: { 'site name,x=y': 'north wing, "A"=1' },
      },
      { t: T + 1, type: 'air quality,room=a', data: { 'v2 temp,c=x': 22 } },
    ])
  })

  it('curl with a gzipped file, at each precision, to /write and /api/v2/write', async () => {
    const device = await fixture.pipeline.registerDevice()
    const cases = [
      { precision: 's', stamp: String(T / 1000), t: T },
      { precision: 'ms', stamp: String(T + 1), t: T + 1 },
      { precision: 'us', stamp: `${T + 2}123`, t: T + 2 },
      { precision: 'ns', stamp: `${T + 3}123456`, t: T + 3 },
    ]
    for (const [i, { precision, stamp }] of cases.entries()) {
      const gz = await file('lp.gz', gzipSync(`curl\\ m,unit=c curl_v=${i}i,curl_s="x\\"y" ${stamp}\n`))
      const path =
        i % 2 === 0
          ? `/write?db=x&precision=${precision}`
          : `/api/v2/write?org=o&bucket=b&precision=${precision}`
      const result = await run('curl', [
        '-sS',
        '-w',
        '%{http_code}',
        '-H',
        `Authorization: Token ${device.apiKey}`,
        '-H',
        'Content-Encoding: gzip',
        '--data-binary',
        `@${gz}`,
        `${url()}${path}`,
      ])
      expect(result.stdout).toBe('204')
    }
    await expectInBothStores(
      fixture,
      device.id,
      cases.map(({ t }, i) => ({
        t,
        type: 'curl m',
        data: { curl_v: i, curl_s: 'x"y' },
        metadata: { unit: 'c' },
      })),
    )
  })

  it('the influx 1.x CLI: -import into /write with Basic auth and -precision', async () => {
    const device = await fixture.pipeline.registerDevice()
    const path = await file(
      'import.txt',
      [
        '# DML',
        '# CONTEXT-DATABASE: iotflow',
        `cli,host=edge\\ 1 cli_v=1.5,cli_n=2i,cli_b=false ${T / 1000}`,
        `cli,host=edge\\ 1 cli_v=2.5,cli_s="a \\"quoted\\" one" ${T / 1000 + 1}`,
        '',
      ].join('\n'),
    )
    const result = await run('influx', [
      '-host',
      '127.0.0.1',
      '-port',
      port(),
      '-username',
      'anyone',
      '-password',
      device.apiKey,
      '-import',
      '-path',
      path,
      '-precision',
      's',
    ])
    expect(result.stdout + result.stderr).toContain('Processed 2 inserts')
    expect(result.stdout + result.stderr).toContain('Failed 0 inserts')
    expect(result.code).toBe(0)
    await expectInBothStores(fixture, device.id, [
      { t: T, type: 'cli', data: { cli_v: 1.5, cli_n: 2, cli_b: false }, metadata: { host: 'edge 1' } },
      {
        t: T + 1000,
        type: 'cli',
        data: { cli_v: 2.5, cli_s: 'a "quoted" one' },
        metadata: { host: 'edge 1' },
      },
    ])
  })

  it("Debian's python3-influxdb client (v1 /write, u/p credentials)", async () => {
    const device = await fixture.pipeline.registerDevice()
    const script = `
import sys
from influxdb import InfluxDBClient
client = InfluxDBClient(host='127.0.0.1', port=int(sys.argv[1]), username='anyone', password=sys.argv[2], database='iotflow')
print(client.ping())
client.write_points([
  {"measurement": "py m,x", "tags": {"tag key": "v=1,2"}, "time": ${T}, "fields": {"py v": 1.25, "py_n": 5, "py_s": 'he said "ok" \\\\ done', "py_b": True}},
  {"measurement": "py m,x", "time": ${T + 5}, "fields": {"py v": 3.0}},
], time_precision='ms')
client.write(['py\\\\ m\\\\,x py\\\\ v=4 ${T + 9}'], params={'db': 'iotflow', 'precision': 'ms'}, protocol='line')
print('written')
`
    const result = await run('/usr/bin/python3', ['-c', script, port(), device.apiKey])
    expect(result.stderr).toBe('')
    expect(result.stdout).toContain('1.8.10')
    expect(result.stdout).toContain('written')
    await expectInBothStores(fixture, device.id, [
      {
        t: T,
        type: 'py m,x',
        data: { 'py v': 1.25, py_n: 5, py_s: 'he said "ok" \\ done', py_b: true },
        metadata: { 'tag key': 'v=1,2' },
      },
      { t: T + 5, type: 'py m,x', data: { 'py v': 3 } },
      { t: T + 9, type: 'py m,x', data: { 'py v': 4 } },
    ])
  })
})

describe('line protocol answers', () => {
  it('GET and HEAD /ping answer 204 with X-Influxdb-Version', async () => {
    for (const method of ['GET', 'HEAD']) {
      const response = await fetch(`${url()}/ping`, { method })
      expect(response.status).toBe(204)
      expect(response.headers.get('x-influxdb-version')).toBe('1.8.10')
    }
  })

  it('a type conflict stores the valid lines and answers 422 "partial write" with the number dropped', async () => {
    const device = await fixture.pipeline.registerDevice()
    const auth = { authorization: `Token ${device.apiKey}` }
    expect((await post('/api/v2/write?precision=ms', `c c_num=1,c_str="a" ${T}`, auth)).status).toBe(204)
    for (const [path, client] of [
      ['/api/v2/write?precision=ms', 'fetch'],
      ['/write?precision=ms', 'fetch v1'],
    ] as const) {
      const offset = client === 'fetch' ? 1 : 10
      const response = await post(
        path,
        [
          `c c_num=2 ${T + offset}`,
          `c c_num="two" ${T + offset + 1}`,
          `c c_str=3i ${T + offset + 2}`,
          `c c_str="ok",c_new=1 ${T + offset + 3}`,
        ].join('\n'),
        auth,
      )
      expect(response.status).toBe(422)
      const body = (await response.json()) as { code: string; message: string; errors: { path: string }[] }
      expect(body.code).toBe('unprocessable entity')
      expect(body.message).toMatch(/^partial write: field type conflict: dropped=2 lines, 2 stored; line 2/)
      expect(body.errors.map((e) => e.path)).toEqual(['line 2.data["c.c_num"]', 'line 3.data["c.c_str"]'])
    }
    await expectInBothStores(fixture, device.id, [
      { t: T, type: 'c', data: { c_num: 1, c_str: 'a' } },
      { t: T + 1, type: 'c', data: { c_num: 2 } },
      { t: T + 4, type: 'c', data: { c_str: 'ok', c_new: 1 } },
      { t: T + 10, type: 'c', data: { c_num: 2 } },
      { t: T + 13, type: 'c', data: { c_str: 'ok', c_new: 1 } },
    ])
  })

  it('the JS client reports the 422 to its caller and does not retry it', async () => {
    const device = await fixture.pipeline.registerDevice()
    const attempts: number[] = []
    const writeApi = new InfluxDB({ url: url(), token: device.apiKey }).getWriteApi('o', 'b', 'ms', {
      maxRetries: 3,
      writeFailed: (_error, _lines, attempt) => {
        attempts.push(attempt)
      },
    })
    writeApi.writeRecords([`js c_js=1 ${T}`, `js c_js="x" ${T + 1}`])
    await expect(writeApi.close()).rejects.toThrow(/partial write/)
    expect(attempts).toEqual([1])
    await expectInBothStores(fixture, device.id, [{ t: T, type: 'js', data: { c_js: 1 } }])
  })

  it('400 names the first bad line and queues nothing', async () => {
    const device = await fixture.pipeline.registerDevice()
    const response = await post('/write', `ok v_bad=1 ${T}000000\nbad v_bad=oops\nworse`, {
      authorization: `Token ${device.apiKey}`,
    })
    expect(response.status).toBe(400)
    const body = (await response.json()) as { code: string; message: string }
    expect(body).toMatchObject({ code: 'invalid', statusCode: 400 })
    expect(body.message).toBe('line 2: field "v_bad" has an invalid value oops: "bad v_bad=oops"')
    // Fields are named `<measurement>.<field>`: InfluxDB reserves names starting with "_".
    const reserved = await post('/write', `_m v=1 ${T}000000`, { authorization: `Token ${device.apiKey}` })
    expect(reserved.status).toBe(400)
    expect(((await reserved.json()) as { message: string }).message).toBe(
      'line 1["_m.v"]: starts with "_", which InfluxDB reserves',
    )
    await fixture.pipeline.drained()
    expect(await fixture.db.sql`SELECT 1 FROM telemetry WHERE device_id = ${device.id}`).toHaveLength(0)
  })

  it('credentials: 401 without or with a wrong key, and a device_id tag of another device is 403', async () => {
    const device = await fixture.pipeline.registerDevice()
    expect((await post('/api/v2/write', 'm v=1', {})).status).toBe(401)
    const wrong = await post('/write?u=x&p=iot_wrong', 'm v=1', {})
    expect(wrong.status).toBe(401)
    expect(((await wrong.json()) as { code: string }).code).toBe('unauthorized')
    const basic = `Basic ${Buffer.from(`anyone:${device.apiKey}`).toString('base64')}`
    expect(
      (await post('/write', `m,device_id=${device.id} b_v=1 ${T}000000`, { authorization: basic })).status,
    ).toBe(204)
    expect((await post(`/write?u=x&p=${device.apiKey}`, `m b_v=2 ${T + 1}000000`, {})).status).toBe(204)
    const other = await post('/write', `m,device_id=${device.id + 1000} b_v=1`, { authorization: basic })
    expect(other.status).toBe(403)
    await expectInBothStores(fixture, device.id, [
      { t: T, type: 'm', data: { b_v: 1 } },
      { t: T + 1, type: 'm', data: { b_v: 2 } },
    ])
  })

  it("an edge gateway key: the device_id tag names each line's device; others are 403", async () => {
    const [a, b, outsider] = await Promise.all([
      fixture.pipeline.registerDevice(),
      fixture.pipeline.registerDevice(),
      fixture.pipeline.registerDevice(),
    ])
    const created = await fetch(`${url()}/api/v1/gateways`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({ name: uniqueName('site'), device_ids: [a.id, b.id] }),
    })
    const { api_key: key } = (await created.json()) as { api_key: string }
    const auth = { authorization: `Token ${key}` }
    const lines = [
      `gw,device_id=${a.id},room=1 gw_v=1 ${T}`,
      `gw,device_id=${b.id} gw_v=2 ${T}`,
      `gw,device_id=${a.id} gw_v=3 ${T + 1}`,
    ]
    expect((await post('/api/v2/write?precision=ms', lines.join('\n'), auth)).status).toBe(204)
    const refused = await post('/api/v2/write?precision=ms', `gw,device_id=${outsider.id} gw_v=1 ${T}`, auth)
    expect(refused.status).toBe(403)
    expect(((await refused.json()) as { message: string }).message).toContain(
      `this gateway may not send for device ${outsider.id}`,
    )
    expect((await post('/api/v2/write?precision=ms', `gw gw_v=1 ${T}`, auth)).status).toBe(400)
    await expectInBothStores(fixture, a.id, [
      { t: T, type: 'gw', data: { gw_v: 1 }, metadata: { room: '1' } },
      { t: T + 1, type: 'gw', data: { gw_v: 3 } },
    ])
    await expectInBothStores(fixture, b.id, [{ t: T, type: 'gw', data: { gw_v: 2 } }])
  })

  it('413 for a body over the limit once decompressed (a gzip bomb), 415 for another encoding', async () => {
    const device = await fixture.pipeline.registerDevice()
    const auth = { authorization: `Token ${device.apiKey}` }
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, ' '))
    expect(bomb.length).toBeLessThan(1024 * 1024)
    const response = await post('/api/v2/write', bomb, { ...auth, 'content-encoding': 'gzip' })
    expect(response.status).toBe(413)
    expect(((await response.json()) as { code: string }).code).toBe('request too large')
    expect((await post('/api/v2/write', 'm v=1', { ...auth, 'content-encoding': 'br' })).status).toBe(415)
  })
})
