import { describe, expect, it } from 'vitest'
import { pointsInBody, recordIngest, refusalReasonOf } from './ingest.js'
import { createMetrics } from './registry.js'

describe('ingest metrics', () => {
  it('counts the points of every body shape', () => {
    expect(pointsInBody({ data: { t: 1 } })).toBe(1)
    expect(pointsInBody({ points: [{}, {}, {}] })).toBe(3)
    expect(pointsInBody([{}, {}])).toBe(2)
    expect(pointsInBody(undefined)).toBe(0)
  })

  it('names the refusal reason of each status code', () => {
    expect([400, 401, 403, 413, 415, 429, 503, 500].map(refusalReasonOf)).toEqual([
      'invalid',
      'unauthenticated',
      'forbidden',
      'too_large',
      'unsupported_media_type',
      'rate_limited',
      'queue_unavailable',
      'error',
    ])
  })

  it('records accepted points, and refused ones (at least one per refused message) by reason', async () => {
    const metrics = createMetrics()
    recordIngest(metrics, 'mqtt', 'accepted', 5)
    recordIngest(metrics, 'mqtt', 'invalid', 3)
    recordIngest(metrics, 'mqtt', 'unauthenticated', 0)
    recordIngest(metrics, 'http', 'backlog', 0)
    const value = async (name: string) => (await metrics.registry.getSingleMetric(name)?.get())?.values
    expect(await value('iotflow_points_accepted_total')).toEqual([
      { labels: { transport: 'mqtt' }, value: 5 },
    ])
    expect(await value('iotflow_points_refused_total')).toEqual([
      { labels: { transport: 'mqtt', reason: 'invalid' }, value: 3 },
      { labels: { transport: 'mqtt', reason: 'unauthenticated' }, value: 1 },
      { labels: { transport: 'http', reason: 'backlog' }, value: 1 },
    ])
    expect((await value('iotflow_ingest_messages_total'))?.length).toBe(4)
  })
})
