import { writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { InfluxDB } from '@influxdata/influxdb-client'
import { uniqueName, waitFor } from '@iotflow/testkit'
import { describe, expect, it } from 'vitest'
import { usePipelineFixture } from './support/fixture.js'
import { expectInBothStores, run } from './support/line-protocol.js'

/** A small backlog bound and no writer at first: the gateway refuses with 503 until they start. */
const LIMIT = 1000
const fixture = usePipelineFixture({ writers: false, env: { BACKLOG_MAX_POINTS: String(LIMIT) } })
const T = Math.floor(Date.now() / 1000) * 1000 - 86_400_000

/** Queues LIMIT points of filler so the backlog is over its bound, and waits until writes are refused. */
async function fillBacklog(apiKey: string) {
  const filler = Array.from({ length: LIMIT }, (_, i) => `filler f=${i} ${T - LIMIT + i}`).join('\n')
  const post = () =>
    fetch(`${fixture.pipeline.baseUrl}/api/v2/write?precision=ms`, {
      method: 'POST',
      headers: { authorization: `Token ${apiKey}` },
      body: filler,
    })
  expect((await post()).status).toBe(204)
  await waitFor(async () => (await post()).status === 503, { what: 'the backlog to refuse writes' })
}

describe('line protocol under backpressure: real clients retry a 503 and the points are stored', () => {
  it('the JS WriteApi and curl --retry both honour Retry-After and store once the writers drain', async () => {
    const device = await fixture.pipeline.registerDevice()
    await fillBacklog(device.apiKey)

    const failures: number[] = []
    let written = false
    const writeApi = new InfluxDB({ url: fixture.pipeline.baseUrl, token: device.apiKey }).getWriteApi(
      'o',
      'b',
      'ms',
      {
        gzipThreshold: 0,
        maxRetries: 20,
        maxRetryTime: 60_000,
        writeFailed: (error, _lines, attempt) => {
          failures.push((error as { statusCode?: number }).statusCode ?? 0)
          expect(attempt).toBeGreaterThan(0)
        },
        writeSuccess: () => {
          written = true
        },
      },
    )
    // flush() reports the first refusal and keeps the lines in the client's retry buffer (close()
    // would give up instead).
    writeApi.writeRecord(`retry js_v=1 ${T}`)
    await expect(writeApi.flush()).rejects.toMatchObject({ statusCode: 503 })

    const gz = join(tmpdir(), uniqueName('retry.gz'))
    await writeFile(gz, gzipSync(`retry curl_v=2 ${T + 1}\n`))
    const curl = run('curl', [
      '--no-progress-meter',
      '-o',
      `${gz}.answer`,
      '-w',
      '%{http_code}',
      '--retry',
      '30',
      '--retry-max-time',
      '60',
      '-H',
      `Authorization: Token ${device.apiKey}`,
      '-H',
      'Content-Encoding: gzip',
      '--data-binary',
      `@${gz}`,
      `${fixture.pipeline.baseUrl}/api/v2/write?precision=ms`,
    ])

    // Both have been refused at least once before the writers start.
    await waitFor(async () => failures.length > 0, { what: 'the JS client to be refused' })
    expect(failures[0]).toBe(503)
    await fixture.pipeline.startPostgresWriter()
    await fixture.pipeline.startInfluxWriter()

    await waitFor(async () => written, { what: 'the JS client to write on a retry', timeoutMs: 60_000 })
    await writeApi.close()
    const curled = await curl
    expect(curled.stdout, curled.stderr).toBe('204')
    expect(curled.stderr).toMatch(/Will retry in \d+ seconds?/)
    await fixture.pipeline.drained()
    const retried = await fixture.db.sql<{ type: string }[]>`
      SELECT type FROM telemetry WHERE device_id = ${device.id} AND type = 'retry'`
    expect(retried).toHaveLength(2)
    const filler = await fixture.db.sql`SELECT 1 FROM telemetry WHERE device_id = ${device.id}`
    await expectInBothStores(fixture, device.id, [
      ...Array.from({ length: filler.length - 2 }, (_, i) => ({
        t: T - LIMIT + i,
        type: 'filler',
        data: { f: i },
      })),
      { t: T, type: 'retry', data: { js_v: 1 } },
      { t: T + 1, type: 'retry', data: { curl_v: 2 } },
    ])
  })
})
