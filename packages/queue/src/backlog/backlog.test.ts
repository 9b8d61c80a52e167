import { serviceUrls, uniqueName, waitFor } from '@iotflow/testkit'
import { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bullPrefix, type StoreQueueKey } from '../catalog.js'
import { type BatchingWorkerOptions, createBatchingWorker } from '../consume/batching-worker.js'
import { createDeadLetters } from '../dead-letters/dead-letters.js'
import { queueLayout } from '../partitions.js'
import { createBatchEnqueuer, type NewBatch } from '../produce/enqueue.js'
import { createGroupCommitEnqueuer } from '../produce/group-commit-enqueuer.js'
import { createRedisConnection, waitForReady } from '../redis/connection.js'
import { backlogKey, readBacklog, releaseBacklog } from './backlog.js'
import { startBacklogMonitor } from './backlog-monitor.js'

const batch = (deviceId: number, points: number): NewBatch => ({
  device_id: deviceId,
  received_at: Date.now(),
  points: Array.from({ length: points }, (_, i) => ({ t: 1_800_000_000_000 + i, data: { v: i } })),
})

const silent = { info() {}, warn() {}, error() {} }

describe('the backlog counters (real Redis)', () => {
  let producer: Redis
  let worker: Redis
  const prefixes: string[] = []
  const newPrefix = () => {
    const prefix = uniqueName('backlog')
    prefixes.push(prefix)
    return prefix
  }

  /** A writer on `queue` whose store is `writeBatch`, refusing for good whatever it throws. */
  const startWriter = (
    prefix: string,
    queue: StoreQueueKey,
    writeBatch: BatchingWorkerOptions<StoreQueueKey>['writeBatch'],
  ) =>
    createBatchingWorker({
      queue,
      connection: worker,
      queuePrefixes: [prefix],
      concurrency: 10,
      maxBatchPoints: 1000,
      lingerMs: 5,
      maxInFlightWrites: 2,
      shutdownDrainMs: 1000,
      lockDurationMs: 6000,
      stalledIntervalMs: 2000,
      writeBatch,
      classify: () => 'permanent',
      logger: silent,
    })

  /** Waits until `queue`'s counter reads `points`. */
  const backlogReaches = (prefix: string, queue: string, points: number, what: string) =>
    waitFor(async () => (await readBacklog(producer, queueLayout(prefix)))[queue] === points, {
      what: `the ${queue} backlog to reach ${points}: ${what}`,
    })

  beforeAll(async () => {
    producer = createRedisConnection(serviceUrls.redis, 'producer')
    worker = createRedisConnection(serviceUrls.redis, 'worker')
    await Promise.all([waitForReady(producer), waitForReady(worker)])
  })
  afterAll(async () => {
    for (const prefix of prefixes) {
      const keys = await producer.keys(`{${prefix}}:*`)
      if (keys.length) await producer.del(...keys)
    }
    await producer.quit()
    await worker.quit()
  })

  it('counts every store job’s points in the MULTI that queues it, single or grouped', async () => {
    const prefix = newPrefix()
    const enqueuer = createBatchEnqueuer(producer, queueLayout(prefix))
    await enqueuer.enqueue(batch(1, 3))
    await enqueuer.enqueueMany([batch(2, 2), batch(3, 5)])
    const grouped = createGroupCommitEnqueuer(enqueuer, { maxPoints: 1000, lingerMs: 2, maxInFlight: 1 })
    await Promise.all([grouped.enqueue(batch(4, 1)), grouped.enqueue(batch(5, 4))])
    expect(await readBacklog(producer, queueLayout(prefix))).toEqual({
      'store-postgres': 15,
      'store-influx': 15,
    })
    // The counter is one hash under the queue prefix: the queues' Redis Cluster slot.
    expect(backlogKey(prefix)).toBe(`{${prefix}}:backlog`)
    await grouped.close()
  })

  it('gives a job’s points back once the writer completed it, or failed it for good', async () => {
    const prefix = newPrefix()
    const enqueuer = createBatchEnqueuer(producer, queueLayout(prefix))
    const written: number[] = []
    let slowWriteStarted = false
    let releaseSlowWrite = () => {}
    const slowWrite = new Promise<void>((resolve) => {
      releaseSlowWrite = resolve
    })
    // Device 777's write hangs until the test lets it go; device 666's batch is refused for good
    // (a poison batch); the rest is taken.
    const batching = startWriter(prefix, 'storePostgres', async (batches) => {
      if (batches.some((b) => b.device_id === 777)) {
        slowWriteStarted = true
        await slowWrite
      }
      if (batches.some((b) => b.device_id === 666)) throw new Error('refused')
      written.push(...batches.map((b) => b.device_id))
    })
    await enqueuer.enqueue(batch(777, 5))
    await waitFor(() => slowWriteStarted, { what: 'the write of job 777 to start' })
    // One job of three devices' batches, one of which the store refuses: the job fails holding only
    // that batch, yet gives back all it counted.
    await enqueuer.enqueueMany([batch(1, 4), batch(2, 6), batch(666, 7)])
    // Only the job still being written counts (its queue is not empty, so this is no reconciliation).
    await backlogReaches(prefix, 'store-postgres', 5, 'only job 777, still being written')
    expect(written.sort()).toEqual([1, 2])
    releaseSlowWrite()
    await backlogReaches(prefix, 'store-postgres', 0, 'every job done with')
    // The other store's queue, which no writer took, still counts all of it.
    expect((await readBacklog(producer, queueLayout(prefix)))['store-influx']).toBe(22)
    await batching.close()
    await enqueuer.close()
  })

  it('counts a dead letter again once it is replayed', async () => {
    const prefix = newPrefix()
    const enqueuer = createBatchEnqueuer(producer, queueLayout(prefix))
    await enqueuer.enqueue(batch(666, 7))
    const refusing = startWriter(prefix, 'storeInflux', () => Promise.reject(new Error('refused')))
    const deadLetters = createDeadLetters(producer, queueLayout(prefix))
    await waitFor(async () => (await deadLetters.list(['storeInflux'])).length === 1, {
      what: 'a dead letter',
    })
    await refusing.close()
    await backlogReaches(prefix, 'store-influx', 0, 'the dead letter given back')
    expect((await deadLetters.replay({ queues: ['storeInflux'] })).replayed).toHaveLength(1)
    expect((await readBacklog(producer, queueLayout(prefix)))['store-influx']).toBe(7)
    await deadLetters.close()
    await enqueuer.close()
  })

  it('resets a counter that drifted once its queue holds no job, never while it does, and never below 0', async () => {
    const prefix = newPrefix()
    const enqueuer = createBatchEnqueuer(producer, queueLayout(prefix))
    await enqueuer.enqueue(batch(1, 10))
    // A writer that died between completing a job and subtracting its points: the count is too high.
    await producer.hincrby(backlogKey(prefix), 'store-influx', 500)
    expect(await releaseBacklog(producer, prefix, 'store-influx', 0)).toBe(510) // its job is still queued

    const queue = new Queue('store-influx', { connection: producer, prefix: bullPrefix(prefix) })
    await queue.drain() // the job leaves without the counter hearing of it
    expect(await releaseBacklog(producer, prefix, 'store-influx', 0)).toBe(0)
    await queue.close()

    // More given back than counted (a count reset while a release was on its way): clamped at 0.
    expect(await releaseBacklog(producer, prefix, 'store-postgres', 1000)).toBe(0)
    await producer.hincrby(backlogKey(prefix), 'store-postgres', -50)
    expect((await readBacklog(producer, queueLayout(prefix)))['store-postgres']).toBe(0)
    await enqueuer.close()
  })

  it('monitors the counters: over the limit at the bound, and wakes a waiter once back under it', async () => {
    const prefix = newPrefix()
    await producer.hset(backlogKey(prefix), 'store-postgres', 99, 'store-influx', 100)
    const monitor = await startBacklogMonitor({
      redis: producer,
      queues: queueLayout(prefix),
      limit: 100,
      intervalMs: 20,
      logger: silent,
    })
    expect(monitor.overLimit).toBe(true)
    expect(monitor.last).toEqual({
      state: 'over-limit',
      limit: 100,
      points: { 'store-postgres': 99, 'store-influx': 100 },
    })
    let woken = false
    const waiting = monitor.whenUnderLimit().then(() => {
      woken = true
    })
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(woken).toBe(false)
    await producer.hset(backlogKey(prefix), 'store-influx', 40)
    await waiting
    expect(monitor.overLimit).toBe(false)

    await producer.hset(backlogKey(prefix), 'store-influx', 200)
    await waitFor(() => monitor.overLimit, { what: 'the monitor to see the backlog over its limit' })
    const aborted = new AbortController()
    const abandoned = monitor.whenUnderLimit(aborted.signal)
    aborted.abort(new Error('stopping'))
    await expect(abandoned).rejects.toThrow('stopping')
    await monitor.close()
  })
})
