import { type StoreBatchPayload, toColumns } from '@iotflow/contracts'
import { expect, it } from 'vitest'
import { createBatchEnqueuer, type NewBatch } from './enqueue.js'
import { useTestRedis } from './use-test-redis.js'

const { redis: connection, prefix } = useTestRedis('shared')

it('serializes a batch once for both store jobs, and each store job holds all of it', async () => {
  const redis = connection()
  let serializations = 0
  const points = Array.from({ length: 500 }, (_, i) => ({ t: 1_800_000_000_000 + i, data: { v: i } }))
  // JSON.stringify calls toJSON each time it serializes the batch, and the queue carries this value
  // as it is (in its column).
  const counted = {
    toJSON() {
      serializations++
      return 0
    },
  } as unknown as number
  const batch: NewBatch = {
    device_id: 7,
    received_at: 1_800_000_000_000,
    points: [{ t: 1_800_000_000_000, data: { v: counted } }, ...points.slice(1)],
  }
  const enqueuer = createBatchEnqueuer(redis, prefix)
  const { batchId } = await enqueuer.enqueue(batch)
  await enqueuer.close()
  expect(serializations).toBe(1)

  const stored: StoreBatchPayload[] = []
  for (const queue of ['store-postgres', 'store-influx']) {
    const [id] = await redis.lrange(`{${prefix}}:${queue}:wait`, 0, -1)
    stored.push(JSON.parse((await redis.hget(`{${prefix}}:${queue}:${id}`, 'data')) as string))
  }
  expect(stored[0]).toEqual({
    batch_id: batchId,
    batches: [toColumns({ device_id: 7, received_at: 1_800_000_000_000, points })],
  })
  expect(stored[1]).toEqual(stored[0])
})
