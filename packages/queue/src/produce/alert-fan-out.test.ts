import { serviceUrls, waitFor } from '@iotflow/testkit'
import { useTestRedis } from '@iotflow/testkit/use-test-redis'
import { Worker } from 'bullmq'
import { describe, expect, it } from 'vitest'
import {
  ALERT_ENTRY_DATA,
  alertStreamKey,
  fieldOf,
  type RawStreamEntry,
} from '../alert-stream/alert-stream-keys.js'
import { readBacklog } from '../backlog/backlog.js'
import { bullPrefix, queueCatalog, storeQueues } from '../catalog.js'
import { createBatchCompletionWorker } from '../consume/batch-completion-worker.js'
import { queueLayout } from '../partitions.js'
import { createRedisConnection } from '../redis/connection.js'
import { createBatchStatusReader } from '../status/batch-status.js'
import { createBatchEnqueuer, type NewBatch } from './enqueue.js'

const test = useTestRedis('alertfan')
const silent = { info() {}, warn() {}, error() {} }
const batch: NewBatch = {
  device_id: 7,
  received_at: Date.now(),
  points: [
    { t: 1_800_000_000_000, data: { temperature: 31 } },
    { t: 1_800_000_001_000, data: { temperature: 32 } },
  ],
}

describe('the alert fan-out', () => {
  it('adds the alert stream entry in the same enqueue only while switched on, outside the backlog and the parent', async () => {
    const redis = test.redis()
    const prefix = test.prefix
    let alertsOn = false
    const enqueuer = createBatchEnqueuer(redis, queueLayout(prefix), {}, { alertFanOut: () => alertsOn })
    const entries = async () =>
      ((await redis.xrange(alertStreamKey(prefix), '-', '+')) as RawStreamEntry[]).map(([, fields]) =>
        JSON.parse(fieldOf(fields, ALERT_ENTRY_DATA) as string),
      )

    await enqueuer.enqueue(batch)
    expect(await entries()).toEqual([])
    alertsOn = true
    const { batchId } = await enqueuer.enqueue(batch)
    const [entry, ...more] = await entries()
    expect(more).toEqual([])
    expect(entry).toMatchObject({
      batch_id: batchId,
      batches: [{ device_id: 7, t: [1_800_000_000_000, 1_800_000_001_000] }],
    })
    // Only the store queues count: 2 batches of 2 points each.
    expect(await readBacklog(redis, queueLayout(prefix))).toEqual({ 'store-postgres': 4, 'store-influx': 4 })

    // Both stores done, the alert entry still waiting: the batch reads "stored".
    const worker = createRedisConnection(serviceUrls.redis, 'worker')
    const stores = storeQueues.map(
      (key) =>
        new Worker(queueCatalog[key].name, async () => ({}), {
          connection: worker,
          prefix: bullPrefix(prefix),
        }),
    )
    const completion = createBatchCompletionWorker(worker, prefix, silent)
    const status = createBatchStatusReader(redis, queueLayout(prefix))
    await waitFor(async () => (await status.read(batchId))?.status === 'stored', {
      what: 'the batch to be stored',
    })
    expect(await entries()).toHaveLength(1)

    await Promise.all([...stores.map((s) => s.close()), completion.close()])
    await Promise.all([status.close(), enqueuer.close()])
    await worker.quit()
  })
})
