import { describe, expect, it } from 'vitest'
import { influxQueryEndpointOf } from './query-influxql.js'

describe('reading back what a writer writes', () => {
  it('reads InfluxDB 2.x through its v1-compatible /query: the bucket (its DBRP mapping) with the token', () => {
    expect(
      influxQueryEndpointOf({
        api: 'v2',
        url: 'http://influx:8086',
        token: 't0k',
        org: 'o',
        bucket: 'telemetry',
      }),
    ).toEqual({ url: 'http://influx:8086', database: 'telemetry', authorization: 'Token t0k' })
  })

  it("reads InfluxDB 1.x from the database and retention policy written to, as the writer's user", () => {
    expect(
      influxQueryEndpointOf({
        api: 'v1',
        url: 'http://influx:8086',
        database: 'iotflow',
        retentionPolicy: 'month',
        username: 'writer',
        password: 'p:w',
      }),
    ).toEqual({
      url: 'http://influx:8086',
      database: 'iotflow',
      retentionPolicy: 'month',
      authorization: `Basic ${Buffer.from('writer:p:w').toString('base64')}`,
    })
    expect(influxQueryEndpointOf({ api: 'v1', url: 'http://i:8086', database: 'd' })).toEqual({
      url: 'http://i:8086',
      database: 'd',
    })
  })
})
