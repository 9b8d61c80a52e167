import { queryV1, seriesRows } from '@iotflow/influx'
import { waitFor } from '@iotflow/testkit'
import { describe, expect, it } from 'vitest'
import { usePipelineFixture } from './support/fixture.js'
import { startPipeline } from './support/pipeline.js'

const fixture = usePipelineFixture()

describe('field types', () => {
  it("stores the predecessor's humidity 65, 65.0 and 64.5 from three devices as one float field", async () => {
    const t = Date.UTC(2026, 10, 27, 9)
    const bodies = [
      '{"data": {"humidity": 65}}',
      '{"data": {"humidity": 65.0}}',
      '{"data": {"humidity": 64.5}}',
    ]
    const devices = await Promise.all(bodies.map(() => fixture.pipeline.registerDevice()))
    for (const [i, body] of bodies.entries()) {
      const device = devices[i] as { apiKey: string }
      const response = await fixture.pipeline.send(
        device.apiKey,
        body.replace('{"data"', `{"timestamp": ${t + i}, "data"`),
      )
      expect(response.status).toBe(202)
    }
    await waitFor(
      async () =>
        (await Promise.all(devices.map((d) => fixture.influx.rowsOf(d.id)))).every((r) => r.length === 1),
      {
        what: 'the three points in InfluxDB',
      },
    )
    expect((await fixture.influx.fieldTypes()).humidity).toBe('float')
    const [mean] = seriesRows(
      await queryV1(fixture.influx.url, fixture.influx.database, 'SELECT mean(humidity) FROM telemetry'),
    )
    expect(mean?.mean).toBeCloseTo((65 + 65 + 64.5) / 3, 10)
    const counts = await fixture.pipeline.queueCounts()
    expect(counts['store-influx']?.failed).toBe(0)
  })

  it('keeps the first type of a field across gateway instances and restarts', async () => {
    const device = await fixture.pipeline.registerDevice()
    expect((await fixture.pipeline.send(device.apiKey, { data: { pressure: 1013.2 } })).status).toBe(202)

    // Another gateway instance on the same database (as after a restart, or behind a load balancer).
    const other = await startPipeline({ databaseUrl: fixture.db.url, influx: fixture.influx })
    try {
      const otherDevice = await other.registerDevice()
      const refused = await other.send(otherDevice.apiKey, { data: { pressure: 'high' } })
      expect(refused.status).toBe(400)
      expect(await refused.json()).toMatchObject({
        errors: [{ path: 'data.pressure', message: 'field "pressure" is stored as a number; got a string' }],
      })
      // A new field claimed by the other instance binds this one too.
      expect((await other.send(otherDevice.apiKey, { data: { door: true } })).status).toBe(202)
    } finally {
      await other.close()
    }
    const refused = await fixture.pipeline.send(device.apiKey, { data: { door: 'open' } })
    expect(refused.status).toBe(400)
    expect(((await refused.json()) as { errors: { message: string }[] }).errors[0]?.message).toBe(
      'field "door" is stored as a boolean; got a string',
    )
  })

  it('registers nothing for a refused request', async () => {
    const device = await fixture.pipeline.registerDevice()
    const refused = await fixture.pipeline.send(device.apiKey, {
      points: [{ data: { never: 1 } }, { data: {} }],
    })
    expect(refused.status).toBe(400)
    const rows = await fixture.db.sql`SELECT 1 FROM field_types WHERE name = 'never'`
    expect(rows.length).toBe(0)
    // So the field is still free to take any type.
    expect((await fixture.pipeline.send(device.apiKey, { data: { never: 'a string' } })).status).toBe(202)
  })
})
