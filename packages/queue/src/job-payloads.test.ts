import {
  type DeviceBatch,
  LEGACY_POINTS_PAYLOAD_END,
  type StoreBatchPayload,
  toColumns,
} from '@iotflow/contracts'
import { UnrecoverableError } from 'bullmq'
import { describe, expect, it } from 'vitest'
import { InvalidJobPayloadError, payloadOf, pointsOfStoreJob, processedPayloadOf } from './job-payloads.js'

const points: DeviceBatch['points'] = [
  { t: 1_800_000_000_000, data: { v: 1 } },
  { t: 1_800_000_000_001, type: 'status', data: { on: true } },
]
const columns = toColumns({ device_id: 7, received_at: 1_800_000_000_000, points })

describe('a job entering a consumer', () => {
  it('is read as its queue’s schema says, once per job and data', () => {
    const job = { data: { batch_id: 'b', batches: [columns] } satisfies StoreBatchPayload }
    expect(payloadOf('storeInflux', job)).toBe(job.data)
    expect(pointsOfStoreJob(job)).toBe(2)
    expect(
      payloadOf('batches', { data: { batch_id: 'b', points: 2, received_at: 1, devices: [] } }),
    ).toMatchObject({
      points: 2,
    })
  })

  it(`queued before columns (accepted until ${LEGACY_POINTS_PAYLOAD_END}), is upgraded to columns`, () => {
    const legacy = {
      batch_id: 'b',
      batches: [{ device_id: 7, received_at: 1_800_000_000_000, points }, columns],
    }
    const job = { data: legacy }
    expect(payloadOf('storePostgres', job)).toEqual({ batch_id: 'b', batches: [columns, columns] })
    expect(pointsOfStoreJob(job)).toBe(4)
    // Only store batches ever had that shape.
    expect(() => payloadOf('batches', { data: legacy })).toThrow(InvalidJobPayloadError)
    expect(LEGACY_POINTS_PAYLOAD_END).toMatch(/^\d{4}-\d{2}-\d{2}$/)
  })

  it('that matches no schema is refused with the place it goes wrong, and counts no points', () => {
    const job = { data: { batch_id: 'b', batches: [{ ...columns, t: ['soon'] }] } }
    expect(() => payloadOf('storeInflux', job)).toThrow(
      /store-influx job's data does not match its schema: \/batches\/0/,
    )
    expect(() => payloadOf('storeInflux', { data: { batch_id: 'b', batches: [] } })).toThrow(
      InvalidJobPayloadError,
    )
    expect(pointsOfStoreJob(job)).toBe(0)
    expect(() => payloadOf('alertDeliver', { data: { target: 'pager' } })).toThrow(InvalidJobPayloadError)
  })

  it('takes any object as a point’s metadata, and refuses metadata that is not an object', () => {
    const withMetadata = (values: unknown[]) => ({
      data: { batch_id: 'b', batches: [{ ...columns, metadata: { values, at: [0, -1] } }] },
    })
    const job = withMetadata([{ host: 'edge-box', 'a\nkey': { nested: [1] } }])
    expect(payloadOf('storePostgres', job)).toBe(job.data)
    for (const metadata of [['edge-box'], [[]], [1]])
      expect(() => payloadOf('storePostgres', withMetadata(metadata))).toThrow(
        /store-postgres job's data does not match its schema: \/batches\/0\/metadata/,
      )
  })

  it('queued with a type and metadata per point (before 2026-11-30), is upgraded to dictionaries', () => {
    const host = { host: 'edge-box' }
    const perPoint = {
      ...columns,
      type: [null, 'status'],
      metadata: [host, null],
    }
    const job = { data: { batch_id: 'b', batches: [perPoint] } }
    const upgraded = payloadOf('alertEvaluate', job)
    expect(upgraded.batches).toEqual([
      { ...columns, type: { values: ['status'], at: [-1, 0] }, metadata: { values: [host], at: [0, -1] } },
    ])
    expect(pointsOfStoreJob(job)).toBe(2)
  })

  it('whose dictionary does not index every point is refused, naming where', () => {
    const job = { data: { batch_id: 'b', batches: [{ ...columns, type: { values: ['status'], at: [0] } }] } }
    expect(() => payloadOf('storeInflux', job)).toThrow(/\/batches\/0\/type\/at: not one index per point/)
  })

  it('in a BullMQ processor, fails its job for good when its data matches no schema', () => {
    expect(() => processedPayloadOf('alertDeliver', { data: { target: 'pager' } })).toThrow(
      UnrecoverableError,
    )
    const alerts = { alerts: [{ labels: { alertname: 'hot' }, startsAt: '2026-11-30T00:00:00Z' }] }
    expect(processedPayloadOf('alertDeliver', { data: alerts })).toBe(alerts)
  })

  it('is read again once its data changed (a job cut down to its refused batches)', () => {
    const job = { data: { batch_id: 'b', batches: [columns, columns] } as StoreBatchPayload }
    expect(pointsOfStoreJob(job)).toBe(4)
    job.data = { batch_id: 'b', batches: [columns] }
    expect(pointsOfStoreJob(job)).toBe(2)
  })
})
