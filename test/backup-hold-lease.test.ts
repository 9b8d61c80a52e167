import { readdir } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  bullPrefix,
  createRedisConnection,
  createWriterHolds,
  queueCatalog,
  queueLayout,
  storeQueues,
  WRITER_HOLD_CHECK_MS,
  writerHoldKeys,
} from '@iotflow/queue'
import { freePort, serviceUrls, startPrivateInfluxd, waitFor } from '@iotflow/testkit'
import { Queue } from 'bullmq'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type AppProcess, type NodeProcess, spawnApp, spawnNode } from './support/app-process.js'
import { BACKUP_CLI, backupStores, countRows } from './support/backup-stores.js'

/**
 * A backup's hold on the writers is a lease: `pnpm backup` run as its script, killed or frozen while
 * it holds them, against the real writers (processes of their own, whose log is read), the shared
 * PostgreSQL and Redis and a private influxd 1.x (influxd backup talks to its RPC port).
 */
let influxd: Awaited<ReturnType<typeof startPrivateInfluxd>>
const cleanups: (() => Promise<unknown>)[] = []
const redis = createRedisConnection(serviceUrls.redis, 'worker')

beforeAll(async () => {
  influxd = await startPrivateInfluxd()
})
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
  await influxd?.dispose()
  await redis.quit()
})

const LEASE_MS = 4_000
const HELD_LINE = 'writers held'
const LAPSED_LOG = "a backup's hold on the writers lapsed"

/** Stores of the test's own, both writers running as processes, and 300 points stored in both. */
async function heldStores() {
  const stores = await backupStores(influxd, cleanups)
  const writers: AppProcess[] = []
  for (const name of ['writer-postgres', 'writer-influx'] as const) {
    const port = await freePort()
    const writer = spawnApp(name, {
      ...stores.env,
      MIGRATE_ON_START: 'false',
      HEALTH_PORT: String(port),
      WRITER_LINGER_MS: '10',
    })
    cleanups.push(() => writer.stop('SIGKILL'))
    writers.push(writer)
    await waitFor(
      async () => {
        if (!writer.running()) throw new Error(`${name} exited:\n${writer.output()}`)
        return (await fetch(`http://127.0.0.1:${port}/health/ready`).catch(() => undefined))?.ok === true
      },
      { timeoutMs: 60_000, intervalMs: 200, what: `${name} to be ready` },
    )
  }
  const queues = storeQueues.map(
    (key) =>
      new Queue(queueCatalog[key].name, {
        connection: redis,
        prefix: bullPrefix(stores.pipeline.queuePrefix),
      }),
  )
  cleanups.push(() => Promise.all(queues.map((q) => q.close())))
  const device = await stores.pipeline.registerDevice()
  let sent = 0
  /** Sends `n` more points, acknowledged (202). */
  const send = async (n: number) => {
    const points = Array.from({ length: n }, (_, i) => ({
      timestamp: Date.UTC(2026, 10, 20) + sent + i,
      data: { v: sent + i },
    }))
    sent += n
    expect((await stores.pipeline.send(device.apiKey, { points })).status).toBe(202)
  }
  /** Points stored in PostgreSQL and InfluxDB. */
  const stored = async () => [await countRows(stores.db.url), (await stores.influx.rowsOf(device.id)).length]
  const pausedQueues = async () => (await Promise.all(queues.map((q) => q.isPaused()))).filter(Boolean).length
  await send(300)
  await waitFor(async () => (await stored()).every((n) => n === 300), { what: '300 points in both stores' })
  return { ...stores, writers, send, stored, pausedQueues }
}

/** Runs `pnpm backup --to dir`; `whenHeld` runs as soon as it says it holds the writers. */
function startBackup(dir: string, env: Record<string, string>, whenHeld: (backup: NodeProcess) => void) {
  let held = false
  const backup: NodeProcess = spawnNode('backup', BACKUP_CLI, env, {
    args: ['--to', dir],
    onLine: (line) => {
      if (held || !line.includes(HELD_LINE)) return
      held = true
      whenHeld(backup)
    },
  })
  cleanups.push(() => backup.stop('SIGKILL'))
  return backup
}

it('a backup SIGKILLed while it holds the writers holds them no longer than its lease: they resume, log it, and store what was queued meanwhile', async () => {
  const { env, dir, pipeline, writers, send, stored, pausedQueues } = await heldStores()
  let killedAt = 0
  const backup = startBackup(dir, { ...env, BACKUP_HOLD_LEASE_MS: String(LEASE_MS) }, (b) => {
    process.kill(b.pid, 'SIGKILL')
    killedAt = Date.now()
  })
  expect(await backup.exited).toEqual({ code: null, signal: 'SIGKILL' })
  expect(backup.output()).not.toContain('writers released')
  expect(await readdir(dir)).not.toContain('manifest.json')

  // Killed while holding: both store queues paused, the lease in Redis.
  const keys = writerHoldKeys(pipeline.queuePrefix)
  expect(await pausedQueues()).toBe(2)
  expect(await redis.exists(keys.lease)).toBe(1)
  // Ingest goes on into the queue; the writers store nothing while the lease runs.
  await send(200)
  await sleep(Math.max(0, killedAt + LEASE_MS / 2 - Date.now()))
  expect(await stored()).toEqual([300, 300])
  expect(await pausedQueues()).toBe(2)

  // The lease lapses: a writer resumes the queues and says so; both store what was queued.
  const bound = LEASE_MS + WRITER_HOLD_CHECK_MS + 4_000
  await waitFor(async () => (await stored()).every((n) => n === 500), {
    timeoutMs: bound + 10_000,
    intervalMs: 100,
    what: 'the 200 points queued during the hold in both stores',
  })
  const resumedAfter = Date.now() - killedAt
  expect(resumedAfter).toBeGreaterThan(LEASE_MS / 2)
  expect(resumedAfter).toBeLessThan(bound)
  expect(await pausedQueues()).toBe(0)
  expect(await redis.exists(keys.lease, keys.paused, keys.resuming)).toBe(0)
  // One writer lifted the hold (the other found it lifted), and logged it with what it resumed.
  const logged = writers.flatMap((w) => w.output().split('\n')).filter((line) => line.includes(LAPSED_LOG))
  expect(logged).toHaveLength(1)
  expect(JSON.parse(logged[0] as string)).toMatchObject({
    level: 40, // pino's warn
    queues: ['store-postgres', 'store-influx'],
    lease_ms: LEASE_MS,
  })
  console.log(
    `hold lease ${LEASE_MS} ms: writers stored the queued points ${resumedAfter} ms after the SIGKILL`,
  )
}, 120_000)

it('a backup frozen past its lease fails instead of releasing the hold another took meanwhile; a third is refused after waiting for it', async () => {
  const { env, dir, pipeline, send, stored, pausedQueues } = await heldStores()
  const frozen = startBackup(dir, { ...env, BACKUP_HOLD_LEASE_MS: String(LEASE_MS) }, (b) => {
    process.kill(b.pid, 'SIGSTOP')
  })
  // Frozen while holding: it renews nothing, so the lease lapses and the writers resume.
  await waitFor(async () => (await pausedQueues()) === 2, { what: 'the store queues to be held' })
  await waitFor(async () => (await pausedQueues()) === 0, {
    timeoutMs: LEASE_MS + WRITER_HOLD_CHECK_MS + 10_000,
    intervalMs: 100,
    what: 'the lapsed hold to be lifted',
  })

  // Another holder takes the writers; a third, not waiting long, is refused while it holds them.
  const holds = createWriterHolds(redis, queueLayout(pipeline.queuePrefix))
  cleanups.push(() => holds.close())
  const other = await holds.hold({ leaseMs: 60_000, idleTimeoutMs: 10_000, waitMs: 0 })
  await expect(holds.hold({ leaseMs: 60_000, idleTimeoutMs: 10_000, waitMs: 500 })).rejects.toThrow(
    /another backup holds the writers/,
  )
  expect(await pausedQueues()).toBe(2)

  // The frozen backup wakes: its lease is gone, so it fails and leaves the other's hold alone.
  process.kill(frozen.pid, 'SIGCONT')
  expect((await frozen.exited).code).toBe(1)
  expect(frozen.output()).toContain('the hold on the writers lapsed')
  expect(frozen.output()).not.toContain('backup complete')
  expect(await readdir(dir)).not.toContain('manifest.json')
  expect(await pausedQueues()).toBe(2)
  expect(await redis.get(writerHoldKeys(pipeline.queuePrefix).lease)).toBe(other.token)
  await send(100)
  await sleep(WRITER_HOLD_CHECK_MS * 2)
  expect(await stored()).toEqual([300, 300])

  // The other's release lifts its hold: the writers store what waited.
  await other.release()
  expect(await pausedQueues()).toBe(0)
  await waitFor(async () => (await stored()).every((n) => n === 400), { what: '400 points in both stores' })
}, 120_000)

it('a backup stopped with SIGTERM while it holds the writers releases them at once', async () => {
  const { env, dir, pipeline, pausedQueues } = await heldStores()
  let stoppedAt = 0
  const backup = startBackup(dir, { ...env, BACKUP_HOLD_LEASE_MS: '600000' }, (b) => {
    process.kill(b.pid, 'SIGTERM')
    stoppedAt = Date.now()
  })
  expect(await backup.exited).toEqual({ code: null, signal: 'SIGTERM' })
  expect(Date.now() - stoppedAt).toBeLessThan(10_000)
  expect(await pausedQueues()).toBe(0)
  const keys = writerHoldKeys(pipeline.queuePrefix)
  expect(await redis.exists(keys.lease, keys.paused)).toBe(0)
}, 120_000)
