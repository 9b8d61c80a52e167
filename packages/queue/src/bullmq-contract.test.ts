import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type StoreBatchPayload, toColumns } from '@iotflow/contracts'
import { startPrivateRedis } from '@iotflow/testkit'
import { Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { backlogKey, jobStateKeys, readBacklog, releaseBacklog } from './backlog/backlog.js'
import { bullPrefix } from './catalog.js'
import { queueLayout } from './partitions.js'
import { createBatchEnqueuer, type NewBatch } from './produce/enqueue.js'
import { waitForReady } from './redis/connection.js'

/**
 * What the queue layer takes from BullMQ beyond its public API (docs/pipeline.md, "BullMQ beyond its
 * public API"). bullmq is pinned to an exact version; an upgrade that changes any of these fails here.
 */

const workspaceRoot = fileURLToPath(new URL('../../../', import.meta.url))

function installedBullmqVersion(): string {
  let dir = dirname(createRequire(import.meta.url).resolve('bullmq'))
  for (;;) {
    try {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
      if (manifest.name === 'bullmq') return manifest.version
    } catch {}
    dir = dirname(dir)
  }
}

it('every workspace package pins bullmq to the one exact version installed', () => {
  const installed = installedBullmqVersion()
  const declared: Record<string, string> = {}
  for (const group of ['apps', 'packages']) {
    for (const name of readdirSync(join(workspaceRoot, group))) {
      const manifest = JSON.parse(readFileSync(join(workspaceRoot, group, name, 'package.json'), 'utf8'))
      const version = manifest.dependencies?.bullmq ?? manifest.devDependencies?.bullmq
      if (version) declared[`${group}/${name}`] = version
    }
  }
  expect(declared['packages/queue']).toBe(installed)
  for (const version of Object.values(declared)) expect(version).toBe(installed)
})

const batch = (deviceId: number, points: number, first = 0): NewBatch => ({
  device_id: deviceId,
  received_at: 1_800_000_000_000,
  points: Array.from({ length: points }, (_, i) => ({ t: 1_800_000_000_000 + i, data: { v: first + i } })),
})

describe('BullMQ internals the queue layer relies on (a private Redis)', () => {
  let server: Awaited<ReturnType<typeof startPrivateRedis>>
  let redis: Redis
  const prefix = 'contract'

  beforeAll(async () => {
    server = await startPrivateRedis()
    redis = new Redis(server.url, { maxRetriesPerRequest: null })
    await waitForReady(redis)
  })
  afterAll(async () => {
    await redis?.quit()
    await server?.stop()
  })

  it('FlowProducer.add and addBulk call addNode for every job with the MULTI they execute', async () => {
    // MONITOR lists a MULTI's commands between its MULTI and EXEC: each HINCRBY of the backlog must
    // be there, in the transaction that adds the jobs, not in one of its own.
    const monitor = await redis.monitor()
    const commands: string[] = []
    monitor.on('monitor', (_time: string, args: string[]) => {
      const [name, key] = args
      const command = String(name).toLowerCase()
      if (command === 'multi' || command === 'exec') commands.push(command)
      else if (command === 'hincrby' && key === backlogKey(prefix))
        commands.push(`hincrby ${args[2]} ${args[3]}`)
      else if (command === 'evalsha' || command === 'eval') commands.push('script')
    })
    const enqueuer = createBatchEnqueuer(redis, queueLayout(prefix))
    await enqueuer.enqueue(batch(1, 3))
    await enqueuer.enqueueMany([batch(2, 2), batch(3, 5)])
    await enqueuer.close()
    await new Promise((resolve) => setTimeout(resolve, 100)) // the last MONITOR lines to arrive
    monitor.disconnect()

    const transactions: string[][] = []
    let open: string[] | undefined
    for (const command of commands) {
      if (command === 'multi') open = []
      else if (command === 'exec') {
        if (open) transactions.push(open)
        open = undefined
      } else open?.push(command)
    }
    const counts = transactions.map((t) => t.filter((c) => c.startsWith('hincrby')))
    expect(counts.filter((c) => c.length > 0)).toEqual([
      ['hincrby store-postgres 3', 'hincrby store-influx 3'],
      ['hincrby store-postgres 7', 'hincrby store-influx 7'],
    ])
    // Each of those transactions also added the jobs (BullMQ's scripts).
    for (const t of transactions.filter((t) => t.some((c) => c.startsWith('hincrby'))))
      expect(t.filter((c) => c === 'script').length).toBeGreaterThanOrEqual(3)
    expect(await readBacklog(redis, queueLayout(prefix))).toEqual({
      'store-postgres': 10,
      'store-influx': 10,
    })
  })

  it('FlowProducer builds jobs with its Job getter and serializes each through asJSON', async () => {
    const flowPrefix = 'shared'
    let serializations = 0
    const points = batch(7, 500).points
    // JSON.stringify calls toJSON each time it serializes the batch, and the queue carries this value
    // as it is (in its column).
    const counted = {
      toJSON() {
        serializations++
        return 0
      },
    } as unknown as number
    const enqueuer = createBatchEnqueuer(redis, queueLayout(flowPrefix))
    const { batchId } = await enqueuer.enqueue({
      device_id: 7,
      received_at: 1_800_000_000_000,
      points: [{ t: 1_800_000_000_000, data: { v: counted } }, ...points.slice(1)],
    })
    await enqueuer.close()
    expect(serializations).toBe(1)

    const stored: StoreBatchPayload[] = []
    for (const queue of ['store-postgres', 'store-influx']) {
      const [id] = await redis.lrange(`{${flowPrefix}}:${queue}:wait`, 0, -1)
      stored.push(JSON.parse((await redis.hget(`{${flowPrefix}}:${queue}:${id}`, 'data')) as string))
    }
    expect(stored[0]).toEqual({
      batch_id: batchId,
      batches: [toColumns({ device_id: 7, received_at: 1_800_000_000_000, points })],
    })
    expect(stored[1]).toEqual(stored[0])
  })

  it('a job waiting, paused, active, delayed or prioritized is in a list or sorted set the backlog script reads', async () => {
    const queuePrefix = 'states'
    const name = 'store-influx'
    const queue = new Queue(name, { connection: redis, prefix: bullPrefix(queuePrefix) })
    const counted = async () => {
      await redis.hset(backlogKey(queuePrefix), name, 5)
      return releaseBacklog(redis, queuePrefix, name, 0)
    }
    const typesOfStateKeys = async () => {
      const types: Record<string, string> = {}
      for (const state of jobStateKeys) types[state] = await redis.type(queue.keys[state] as string)
      return types
    }

    expect(await counted()).toBe(0) // no job: reconciled to zero
    await queue.add('store', {}, { delay: 60_000 })
    expect(await counted()).toBe(5)
    await queue.add('store', {}, { priority: 1 })
    await queue.add('store', {})
    expect(await typesOfStateKeys()).toMatchObject({ delayed: 'zset', prioritized: 'zset', wait: 'list' })
    await queue.obliterate({ force: true })

    await queue.pause()
    await queue.add('store', {})
    expect(await counted()).toBe(5)
    await queue.obliterate({ force: true })

    let release = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    let taken = () => {}
    const active = new Promise<void>((resolve) => {
      taken = resolve
    })
    const worker = new Worker(
      name,
      async () => {
        taken()
        await held
      },
      { connection: { host: '127.0.0.1', port: server.port }, prefix: bullPrefix(queuePrefix) },
    )
    await queue.add('store', {})
    await active
    expect(await redis.type(queue.keys.active as string)).toBe('list')
    expect(await counted()).toBe(5)
    release()
    await new Promise<void>((resolve) => worker.once('completed', () => resolve()))
    expect(await counted()).toBe(0)
    await worker.close()
    await queue.close()
  })
})
