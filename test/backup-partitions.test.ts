import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { LevelBatches } from '@iotflow/backup'
import {
  allPartitions,
  bullPrefix,
  createRedisConnection,
  partitionOfDevice,
  partitionPrefix,
  queueCatalog,
  storeQueues,
} from '@iotflow/queue'
import { startPrivateInfluxd, startPrivateRedis, waitFor } from '@iotflow/testkit'
import { Queue } from 'bullmq'
import postgres from 'postgres'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type NodeProcess, spawnNode } from './support/app-process.js'
import {
  BACKUP_CLI,
  backupStores,
  countRows,
  dropBothStores,
  readManifest,
  restore,
  verify,
} from './support/backup-stores.js'

/**
 * `pnpm backup` and `pnpm restore` with QUEUE_PARTITIONS=3, run as their scripts, against a private
 * Redis (AOF every second, as production), a private influxd 1.x (influxd backup talks to its RPC
 * port) and the shared PostgreSQL, the gateway and both writers in this process.
 */
const PARTITIONS = 3
let influxd: Awaited<ReturnType<typeof startPrivateInfluxd>>
let redisServer: Awaited<ReturnType<typeof startPrivateRedis>>
const cleanups: (() => Promise<unknown>)[] = []

beforeAll(async () => {
  ;[influxd, redisServer] = await Promise.all([
    startPrivateInfluxd(),
    startPrivateRedis({ appendfsync: 'everysec' }),
  ])
})
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
  await influxd?.dispose()
  await redisServer?.dispose()
})

it('holds the store queues of every partition; after both stores are wiped and restored, and the queues drained, both hold every acknowledged point', async () => {
  const { db, influx, pipeline, dir, env } = await backupStores(influxd, cleanups, {
    url: redisServer.url,
    partitions: PARTITIONS,
  })
  const { layout } = pipeline
  // Devices until every partition has one (a device's partition is a hash of its id).
  const devices: Awaited<ReturnType<typeof pipeline.registerDevice>>[] = []
  const partitionOf = (deviceId: number) => partitionOfDevice(layout, deviceId)
  while (new Set(devices.map((d) => partitionOf(d.id))).size < PARTITIONS) {
    if (devices.length === 20) throw new Error('20 devices and still a partition without one')
    devices.push(await pipeline.registerDevice())
  }
  const base = Date.UTC(2026, 10, 30)
  let next = 0
  /** Sends `n` more points of every device, acknowledged (202); returns how many in all. */
  const sendEach = async (n: number) => {
    const from = next
    next += n
    for (const device of devices) {
      const points = Array.from({ length: n }, (_, i) => ({
        timestamp: base + from + i,
        data: { v: from + i },
      }))
      expect((await pipeline.send(device.apiKey, { points })).status).toBe(202)
    }
    return n * devices.length
  }
  const influxPoints = async () =>
    (await Promise.all(devices.map(async (d) => (await influx.rowsOf(d.id)).length))).reduce(
      (a, b) => a + b,
      0,
    )

  // Stored by PostgreSQL only (InfluxDB's writer not started): in the backup, InfluxDB's copy from
  // the level file, whatever partition the batch is in.
  const postgresWriter = await pipeline.startPostgresWriter()
  const inPostgresOnly = await sendEach(200)
  await waitFor(async () => (await countRows(db.url)) === inPostgresOnly, {
    what: 'the points in PostgreSQL',
  })
  await postgresWriter.close()
  // In neither store when the backup starts: counted in its manifest as still queued.
  const inNeither = await sendEach(100)

  // The store queues of every partition, as the writers see them.
  const inspector = createRedisConnection(redisServer.url, 'worker')
  const queues = allPartitions(layout).flatMap((partition) =>
    storeQueues.map(
      (key) =>
        new Queue(queueCatalog[key].name, {
          connection: inspector,
          prefix: bullPrefix(partitionPrefix(layout, partition)),
        }),
    ),
  )
  cleanups.push(async () => {
    await Promise.all(queues.map((queue) => queue.close()))
    await inspector.quit()
  })
  /** Jobs each partition's store queue holds, not taken by a writer (held or not yet taken). */
  const notTaken = () =>
    Promise.all(
      queues.map(async (queue) => {
        const counts = await queue.getJobCounts('waiting', 'paused', 'prioritized')
        return Object.values(counts).reduce((sum, n) => sum + n, 0)
      }),
    )

  // Frozen (SIGSTOP) as soon as it holds the writers, so that the hold can be looked at.
  let frozen = false
  const backup: NodeProcess = spawnNode(
    'backup',
    BACKUP_CLI,
    { ...env, BACKUP_SETTLE_MS: '300', BACKUP_HOLD_LEASE_MS: '120000' },
    {
      args: ['--to', dir],
      onLine: (line) => {
        if (frozen || !line.includes('writers held')) return
        process.kill(backup.pid, 'SIGSTOP')
        frozen = true
      },
    },
  )
  cleanups.push(() => backup.stop('SIGKILL'))
  await waitFor(async () => frozen || !backup.running(), { timeoutMs: 60_000, what: 'the backup to hold' })
  expect(frozen, backup.output()).toBe(true)

  // Held: the store queues of every partition paused. Writers started now take nothing, and what is
  // sent meanwhile waits in its partition's queues.
  expect(await Promise.all(queues.map((queue) => queue.isPaused()))).toEqual(queues.map(() => true))
  const writers = [await pipeline.startPostgresWriter(), await pipeline.startInfluxWriter()]
  const duringHold = await sendEach(100)
  await sleep(1_500)
  expect(await countRows(db.url)).toBe(inPostgresOnly)
  expect(await influxPoints()).toBe(0)
  const waiting = await notTaken()
  expect(
    waiting.every((jobs) => jobs > 0),
    `jobs not taken per partition queue: ${waiting}`,
  ).toBe(true)
  // Stopped before the hold ends: what is queued stays queued through the wipe and the restore.
  for (const writer of writers) await writer.close()

  process.kill(backup.pid, 'SIGCONT')
  const exited = await backup.exited
  expect(exited.code, backup.output()).toBe(0)
  expect(backup.output()).toContain(`store-influx lacks ${inPostgresOnly} point(s)`)
  expect(backup.output()).toMatch(
    new RegExp(`still queued, not in the backup: store-postgres ${inNeither} point`),
  )
  expect(await Promise.all(queues.map((queue) => queue.isPaused()))).toEqual(queues.map(() => false))

  const manifest = await readManifest(dir)
  expect(manifest.postgresql.points).toBe(inPostgresOnly)
  expect(manifest.influxdb.field_values).toBe(0)
  expect(manifest.level?.lacking['store-influx']?.points).toBe(inPostgresOnly)
  expect(manifest.level?.lacking['store-postgres']).toEqual({ batches: 0, points: 0 })
  // The batches InfluxDB lacked came from every partition.
  const level = JSON.parse(await readFile(join(dir, 'level-batches.json'), 'utf8')) as LevelBatches
  const levelPartitions = new Set(
    (level['store-influx'] ?? []).flatMap((payload) => payload.batches.map((b) => partitionOf(b.device_id))),
  )
  expect([...levelPartitions].sort()).toEqual(allPartitions(layout))
  for (const name of ['store-postgres', 'store-influx']) {
    const unstored = manifest.queue.acknowledged_not_in_backup[name]
    expect(unstored?.points).toBe(inNeither)
    expect(unstored?.jobs).toBeGreaterThanOrEqual(PARTITIONS) // a job per partition at least
  }

  // Both stores lost, then restored.
  await dropBothStores(manifest, influx)
  const restored = await restore(dir, env)
  expect(restored.status, restored.stderr).toBe(0)
  expect(restored.stdout).toContain(`postgresql ${inPostgresOnly} points, ${devices.length} devices`)
  expect(restored.stdout).toContain(`written into it: store-influx ${inPostgresOnly} point(s)`)
  expect(await countRows(db.url)).toBe(inPostgresOnly)
  expect(await influxPoints()).toBe(inPostgresOnly)

  // The writers started again store what the queues of every partition kept: every acknowledged
  // point, in both stores, once.
  await pipeline.startPostgresWriter()
  await pipeline.startInfluxWriter()
  const acknowledged = inPostgresOnly + inNeither + duringHold
  await waitFor(
    async () => (await countRows(db.url)) === acknowledged && (await influxPoints()) === acknowledged,
    {
      timeoutMs: 60_000,
      what: `${acknowledged} points in both stores`,
    },
  )
  await pipeline.drained()
  const verified = await verify(env, '--since', String(base))
  expect(verified.status, verified.stdout + verified.stderr).toBe(0)
  expect(verified.stdout).toContain(`postgres ${acknowledged} points, influxdb ${acknowledged} points`)
  expect(verified.stdout).toContain('the stores agree')
  const sql = postgres(db.url, { max: 1, onnotice: () => {} })
  const perDevice = await sql<{ device_id: number; n: number }[]>`
    SELECT device_id, count(DISTINCT time)::int AS n FROM telemetry GROUP BY device_id ORDER BY device_id`
  await sql.end()
  expect(perDevice).toEqual(devices.map((d) => ({ device_id: d.id, n: next })))
}, 180_000)
