import { redisTargetOf } from '@iotflow/config'
import { startPrivateRedis, startPrivateRedisCluster, uniqueName, waitFor } from '@iotflow/testkit'
import { useTestRedis } from '@iotflow/testkit/use-test-redis'
import { describe, expect, it } from 'vitest'
import { partitionOfDevice, partitionPrefix, queueLayout } from '../partitions.js'
import { createRedisConnection, waitForReady } from '../redis/connection.js'
import { createQueueDepths } from '../status/queue-depths.js'
import { createBatchEnqueuer, type NewBatch } from './enqueue.js'
import type { MultiTake } from './multi-take.js'
import { bucketKey } from './token-buckets.js'

const batch = (deviceId: number, points = 1): NewBatch => ({
  device_id: deviceId,
  received_at: Date.now(),
  points: Array.from({ length: points }, (_, i) => ({ t: 1_800_000_000_000 + i, data: { v: i } })),
})

/**
 * A take of `cost` from device `deviceId`'s bucket under `queuePrefix`, recording how it settled:
 * the first settle only, as MultiTake's contract has it (device-rate-limiter.ts's takes do the same).
 */
function takeOf(
  queuePrefix: string,
  deviceId: number,
  cost: number,
  limit = { perSecond: 0.001, burst: 10 },
) {
  const settled: { queued: boolean; level?: number; at?: number }[] = []
  const take: MultiTake = {
    deviceId,
    key: bucketKey(queuePrefix, 'device', String(deviceId)),
    ...limit,
    cost,
    settle: (queued, reading) => {
      if (settled.length === 0) settled.push({ queued, ...reading })
    },
  }
  return { take, settled }
}

/** The tokens in a bucket's string ("<tokens> <ms>"), or null when it has none (a full bucket). */
const tokensIn = (state: string | null) => (state === null ? null : Number(state.split(' ')[0]))

describe('tokens taken in the MULTI that queues a batch', () => {
  const { redis, prefix, more } = useTestRedis('multi-take')

  it('takes them with the enqueue, may leave the bucket in debt, and reports each level after', async () => {
    const enqueuer = createBatchEnqueuer(redis(), queueLayout(prefix))
    const first = takeOf(prefix, 1, 4)
    const second = takeOf(prefix, 1, 9)
    await enqueuer.enqueueMany([batch(1, 4), batch(1, 9)], [first.take, second.take])
    // Inside a MULTI it cannot refuse: 10 - 4 - 9 leaves the bucket 3 in debt. The device's takes
    // are one take of their sum, whose level each is told.
    expect(first.settled).toEqual([{ queued: true, level: -3, at: expect.any(Number) }])
    expect(second.settled).toEqual([{ queued: true, level: -3, at: expect.any(Number) }])
    expect(tokensIn(await redis().get(first.take.key))).toBeCloseTo(-3, 2)
    await enqueuer.close()
  })

  it('a take of 0 takes nothing and learns only that its batch was queued, beside a real take', async () => {
    const enqueuer = createBatchEnqueuer(redis(), queueLayout(prefix))
    const owing = takeOf(prefix, 2, 0)
    const taking = takeOf(prefix, 3, 4)
    await enqueuer.enqueueMany([batch(2, 5), batch(3, 4)], [owing.take, taking.take])
    expect(owing.settled).toEqual([{ queued: true }])
    expect(taking.settled).toEqual([{ queued: true, level: 6, at: expect.any(Number) }])
    expect(await redis().get(owing.take.key)).toBeNull()
    // Alone in its MULTI, with no script added to it.
    const alone = takeOf(prefix, 2, 0)
    await enqueuer.enqueueMany([batch(2, 1)], [alone.take])
    expect(alone.settled).toEqual([{ queued: true }])
    expect(await redis().get(alone.take.key)).toBeNull()
    await enqueuer.close()
  })

  it('takes in the MULTI of the device’s own partition, under its hash tag', async () => {
    const layout = queueLayout(more(), 3)
    const enqueuer = createBatchEnqueuer(redis(), layout)
    const devices = [1, 2, 3, 4, 5, 6]
    const takes = devices.map((id) => takeOf(partitionPrefix(layout, partitionOfDevice(layout, id)), id, id))
    await enqueuer.enqueueMany(
      devices.map((id) => batch(id, id)),
      takes.map(({ take }) => take),
    )
    for (const [i, { settled, take }] of takes.entries()) {
      expect(settled).toEqual([{ queued: true, level: 10 - (i + 1), at: expect.any(Number) }])
      expect(tokensIn(await redis().get(take.key))).toBeCloseTo(10 - (i + 1), 2)
    }
    await enqueuer.close()
  })

  it('takes in each partition’s MULTI on a Redis Cluster, one slot per MULTI', async () => {
    const cluster = await startPrivateRedisCluster({ replicasPerMaster: 0 })
    const connection = createRedisConnection(redisTargetOf(cluster.env()), 'producer', {
      enableOfflineQueue: true,
    })
    try {
      const layout = queueLayout(uniqueName('multi-take-cluster'), 6)
      const enqueuer = createBatchEnqueuer(connection, layout)
      const devices = Array.from({ length: 12 }, (_, i) => i + 1)
      const takes = devices.map((id) =>
        takeOf(partitionPrefix(layout, partitionOfDevice(layout, id)), id, id, {
          perSecond: 0.001,
          burst: 20,
        }),
      )
      await enqueuer.enqueueMany(
        devices.map((id) => batch(id, id)),
        takes.map(({ take }) => take),
      )
      for (const [i, { settled, take }] of takes.entries()) {
        expect(settled).toEqual([{ queued: true, level: 20 - (i + 1), at: expect.any(Number) }])
        expect(tokensIn(await connection.get(take.key))).toBeCloseTo(20 - (i + 1), 2)
      }
      await enqueuer.close()
    } finally {
      connection.disconnect()
      await cluster.dispose()
    }
  }, 60_000)

  it('takes nothing when the MULTI fails, and takes what a MULTI that queued its batch owes', async () => {
    const server = await startPrivateRedis()
    const connection = createRedisConnection(server.url, 'producer')
    connection.on('error', () => {})
    try {
      await waitForReady(connection)
      const layout = queueLayout(prefix)
      const enqueuer = createBatchEnqueuer(connection, layout)
      const depths = createQueueDepths(connection, layout)
      const waiting = async () => (await depths.read())['store-postgres']?.waiting
      // BullMQ's own scripts run once on this connection; the take's script not yet.
      await enqueuer.enqueueMany([batch(8)])

      // Out of memory (noeviction): the backlog's HINCRBY is refused when queued, so Redis aborts
      // the whole MULTI at EXEC, the take's script with it.
      await connection.config('SET', 'maxmemory', '1')
      const failed = takeOf(prefix, 7, 5)
      await expect(enqueuer.enqueueMany([batch(7, 5)], [failed.take])).rejects.toThrow(/EXECABORT/)
      expect(failed.settled).toEqual([{ queued: false }])
      await connection.config('SET', 'maxmemory', '0')
      expect(await connection.get(failed.take.key)).toBeNull()
      expect(await waiting()).toBe(1)

      // ioredis sent the script as EVAL in the aborted MULTI and now believes it loaded: inside the
      // next MULTI it is NOSCRIPT, yet that MULTI queues the batch. The tokens it owes are taken by
      // a call of their own, which loads the script for the MULTIs after.
      const owed = takeOf(prefix, 7, 5)
      await enqueuer.enqueueMany([batch(7, 5)], [owed.take])
      expect(await waiting()).toBe(2)
      expect(owed.settled).toEqual([{ queued: true }])
      await waitFor(async () => tokensIn(await connection.get(owed.take.key)) !== null, {
        what: 'the owed take',
      })
      expect(tokensIn(await connection.get(owed.take.key))).toBeCloseTo(5, 2)
      const next = takeOf(prefix, 7, 1)
      await enqueuer.enqueueMany([batch(7, 1)], [next.take])
      expect(next.settled).toEqual([{ queued: true, level: 4, at: expect.any(Number) }])
      await depths.close()
      await enqueuer.close()
    } finally {
      connection.disconnect()
      await server.dispose()
    }
  })
})
