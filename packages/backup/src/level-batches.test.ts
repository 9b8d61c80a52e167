import { metadataAt, typeAt } from '@iotflow/contracts'
import { describe, expect, it } from 'vitest'
import { levelBatchesOf } from './level-batches.js'
import { RefusedError } from './refused-error.js'

const columns = {
  device_id: 7,
  received_at: 1,
  t: [1_800_000_000_000, 1_800_000_000_001],
  fields: ['v'],
  values: [[1, 2]],
}

describe("a backup's level file", () => {
  it('is read as a writer reads a job: a payload of a backup taken before dictionaries is upgraded', () => {
    const perPoint = { ...columns, type: ['cpu', null], metadata: [null, { host: 'edge-box' }] }
    const current = { ...columns, type: { values: ['cpu'] } }
    const read = levelBatchesOf(
      {
        'store-postgres': [{ batch_id: 'old', batches: [perPoint] }],
        'store-influx': [{ batch_id: 'new', batches: [current] }],
      },
      'level-batches.json',
    )
    const [old] = read['store-postgres']?.[0]?.batches ?? []
    if (!old) throw new Error('no batch')
    expect([typeAt(old, 0), typeAt(old, 1)]).toEqual(['cpu', undefined])
    expect([metadataAt(old, 0), metadataAt(old, 1)]).toEqual([undefined, { host: 'edge-box' }])
    expect(read['store-influx']).toEqual([{ batch_id: 'new', batches: [current] }])
  })

  it('is refused when a payload is no store job', () => {
    expect(() => levelBatchesOf({ 'store-postgres': [{ batch_id: 'x', batches: [] }] }, 'f')).toThrow(
      new RefusedError("f: /store-postgres/0 is not a store job's payload"),
    )
    expect(() => levelBatchesOf([], 'f')).toThrow(RefusedError)
  })
})
