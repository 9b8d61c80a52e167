import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { usePipelineFixture } from './support/fixture.js'

/** One body at a time: 1 in progress, 16 waiting, the rest refused at once (no other refusal on). */
const fixture = usePipelineFixture({
  writers: true,
  env: { LINE_PROTOCOL_MAX_IN_FLIGHT: '1', INGEST_SHED_AFTER_MS: '0', DEVICE_RATE_POINTS_PER_SECOND: '0' },
})
const T = Math.floor(Date.now() / 1000) * 1000 - 3_600_000
const LINES = 5000
const REQUESTS = 40

describe('line protocol bodies are taken a few at a time (LINE_PROTOCOL_MAX_IN_FLIGHT)', () => {
  it('refuses the bodies past the waiting ones with 503 and Retry-After, and stores every accepted one', async () => {
    const device = await fixture.pipeline.registerDevice()
    const body = (request: number) =>
      gzipSync(
        Array.from(
          { length: LINES },
          (_, i) => `slot,host=edge v=${i}i,w=${request} ${T + request * LINES + i}`,
        ).join('\n'),
      )
    const answers = await Promise.all(
      Array.from({ length: REQUESTS }, async (_, request) => {
        const response = await fetch(`${fixture.pipeline.baseUrl}/api/v2/write?precision=ms`, {
          method: 'POST',
          headers: { authorization: `Token ${device.apiKey}`, 'content-encoding': 'gzip' },
          body: body(request),
        })
        const text = await response.text()
        return { status: response.status, retryAfter: response.headers.get('retry-after'), text }
      }),
    )
    const accepted = answers.filter((a) => a.status === 204)
    const refused = answers.filter((a) => a.status !== 204)
    // At most one in progress and 16 waiting whenever a request comes in; the first is never refused.
    expect(accepted.length).toBeGreaterThanOrEqual(1)
    expect(refused.length).toBeGreaterThan(0)
    for (const answer of refused) {
      expect(answer.status).toBe(503)
      expect(Number(answer.retryAfter)).toBeGreaterThanOrEqual(1)
      expect(JSON.parse(answer.text)).toMatchObject({
        code: 'unavailable',
        statusCode: 503,
        message: expect.stringContaining('busy with other line protocol bodies'),
      })
    }
    await fixture.pipeline.drained()
    const [{ n }] = (await fixture.db.sql`
      SELECT count(*)::int AS n FROM telemetry WHERE device_id = ${device.id}`) as [{ n: number }]
    expect(n).toBe(accepted.length * LINES)
  })
})
