import { redisTargetOf } from '@iotflow/config'
import { createRedisConnection, partitionOfDevice, partitionPrefix, queueLayout } from '@iotflow/queue'
import {
  createTestDatabase,
  createTestInfluxDatabase,
  type PrivateRedisCluster,
  redisCommand,
  registerDeviceOverHttp,
  startPrivateRedisCluster,
  uniqueName,
  waitFor,
} from '@iotflow/testkit'
import { Queue } from 'bullmq'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN_TOKEN } from './support/pipeline.js'
import {
  appsEnv,
  createAppStarter,
  postTelemetry,
  runTool,
  spreadQueuePrefix,
} from './support/redis-ha-apps.js'

// QUEUE_PARTITIONS=6 on a Redis Cluster of 3 masters (each with a replica), the gateway and both
// writers as real processes: 100 devices × 1,000 points, every point in both stores exactly once,
// and the queues spread over every master.
const PARTITIONS = 6
const DEVICES = 100
const POINTS_PER_DEVICE = 1_000
const POINTS_PER_REQUEST = 500

/** Every key of `pattern` on the node at `port` (SCAN, as `redis-cli --scan` does). */
async function scanKeys(port: number, pattern: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, page] = (await redisCommand(port, 'SCAN', cursor, 'MATCH', pattern, 'COUNT', 1000)) as [
      string,
      string[],
    ]
    keys.push(...page)
    cursor = next
  } while (cursor !== '0')
  return keys
}

describe('partitioned queues on a Redis Cluster', () => {
  let cluster: PrivateRedisCluster
  let db: Awaited<ReturnType<typeof createTestDatabase>>
  let influx: Awaited<ReturnType<typeof createTestInfluxDatabase>>
  let queuePrefix: string
  let env: Record<string, string>
  let gateway: string
  let spread: Map<number, number[]>
  const apps = createAppStarter(() => env)

  beforeAll(async () => {
    ;[cluster, db, influx] = await Promise.all([
      startPrivateRedisCluster(),
      createTestDatabase(),
      createTestInfluxDatabase(),
    ])
    ;({ prefix: queuePrefix, byMaster: spread } = await spreadQueuePrefix(cluster, PARTITIONS, 'parts'))
    env = {
      ...appsEnv({
        redisEnv: cluster.env(),
        queuePrefix,
        databaseUrl: db.url,
        influxDatabase: influx.database,
      }),
      QUEUE_PARTITIONS: String(PARTITIONS),
    }
    gateway = await apps.start('gateway')
    await Promise.all([apps.start('writer-postgres'), apps.start('writer-influx')])
  }, 180_000)

  afterAll(async () => {
    await apps.stopAll()
    await cluster?.dispose()
    await influx?.drop()
    await db?.drop()
  })

  /** Points per device in InfluxDB (one count query). */
  async function influxCounts(): Promise<Map<number, number>> {
    const url = new URL('/query', influx.url)
    url.searchParams.set('db', influx.database)
    url.searchParams.set('q', 'SELECT count(level) FROM telemetry GROUP BY device_id')
    const body = (await (await fetch(url)).json()) as {
      results: { series?: { tags: { device_id: string }; values: [unknown, number][] }[] }[]
    }
    const series = body.results[0]?.series ?? []
    return new Map(series.map((s) => [Number(s.tags.device_id), Number(s.values[0]?.[1])]))
  }

  async function postgresCounts(): Promise<Map<number, number>> {
    const rows = await db.sql<{ device_id: number; n: number }[]>`
      SELECT device_id, count(*)::int AS n FROM telemetry GROUP BY device_id`
    return new Map(rows.map((r) => [r.device_id, r.n]))
  }

  const total = (counts: Map<number, number>) => [...counts.values()].reduce((sum, n) => sum + n, 0)

  it('stores 100 devices × 1,000 points in both stores exactly once, with queue keys on every master', async () => {
    const devices: { id: number; apiKey: string }[] = []
    for (let i = 0; i < DEVICES; i += 10) {
      devices.push(
        ...(await Promise.all(
          Array.from({ length: 10 }, (_, j) =>
            registerDeviceOverHttp(gateway, ADMIN_TOKEN, uniqueName(`part-${i + j}`)),
          ),
        )),
      )
    }
    const t0 = Date.UTC(2026, 10, 7)
    const requests = devices.flatMap((device) =>
      Array.from({ length: POINTS_PER_DEVICE / POINTS_PER_REQUEST }, (_, r) => ({ device, r })),
    )
    const batchIds = new Map<number, string>()
    const statuses: (number | undefined)[] = []
    // 8 requests at a time, as many devices sending at once.
    let next = 0
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = next++; i < requests.length; i = next++) {
          const { device, r } = requests[i] as (typeof requests)[number]
          const points = Array.from({ length: POINTS_PER_REQUEST }, (_, p) => {
            const n = r * POINTS_PER_REQUEST + p
            return { timestamp: t0 + n, data: { level: n } }
          })
          const response = await postTelemetry(gateway, device.apiKey, points)
          statuses.push(response?.status)
          if (response?.status === 202)
            batchIds.set(device.id, ((await response.json()) as { batch_id: string }).batch_id)
        }
      }),
    )
    expect(statuses.filter((status) => status !== 202)).toEqual([])

    const expected = DEVICES * POINTS_PER_DEVICE
    await waitFor(
      async () => total(await postgresCounts()) >= expected && total(await influxCounts()) >= expected,
      {
        timeoutMs: 240_000,
        intervalMs: 1_000,
        what: `${expected} points in both stores`,
      },
    )
    // Once, not more: a second look after the queues had time to deliver anything twice.
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    const [postgres, influxdb] = await Promise.all([postgresCounts(), influxCounts()])
    const everyDevice = new Map(devices.map((d) => [d.id, POINTS_PER_DEVICE]))
    expect(postgres).toEqual(everyDevice)
    expect(influxdb).toEqual(everyDevice)

    // Each master holds the keys of the partitions whose slots it owns, and only those: every
    // master holds some, and none holds the unpartitioned `{<prefix>}` queues.
    const masters = await cluster.masters()
    expect(masters).toHaveLength(3)
    for (const master of masters) {
      const keys = await scanKeys(master.port, `{${queuePrefix}*`)
      const partitions = new Set(
        keys.map((key) => /^\{[^}]*:p(\d+)\}:/.exec(key)?.[1]).filter((k): k is string => k !== undefined),
      )
      expect([...partitions].map(Number).sort()).toEqual(spread.get(master.port))
      expect(keys.some((key) => key.includes(':ingest-batches:'))).toBe(true)
      expect(keys.filter((key) => key.startsWith(`{${queuePrefix}}:ingest-batches`))).toEqual([])
    }

    // A batch id answers from whichever partition holds it: one device of each partition.
    const layout = queueLayout(queuePrefix, PARTITIONS)
    const onePerPartition = Array.from({ length: PARTITIONS }, (_, k) =>
      devices.find((device) => partitionOfDevice(layout, device.id) === k),
    )
    for (const device of onePerPartition) {
      if (!device) throw new Error('a partition without a device of the 100')
      const response = await fetch(`${gateway}/api/v1/ingest/${batchIds.get(device.id)}`, {
        headers: { 'x-api-key': device.apiKey },
      })
      expect(response.status).toBe(200)
      expect(await response.json()).toMatchObject({ status: 'stored' })
    }

    // Readiness and metrics cover every partition.
    const ready = (await (await fetch(`${gateway}/health/ready`)).json()) as {
      queues: Record<string, { waiting: number }>
      backlog: { points: Record<string, number>; partitions: Record<string, unknown> }
    }
    expect(ready.queues['store-postgres']).toMatchObject({ waiting: 0 })
    expect(Object.keys(ready.backlog.partitions)).toEqual(['0', '1', '2', '3', '4', '5'])
    const metrics = await (await fetch(`${gateway}/metrics`)).text()
    for (let k = 0; k < PARTITIONS; k++) {
      expect(metrics).toContain(`iotflow_queue_backlog_points{queue="store-influx",partition="${k}"} 0\n`)
      expect(metrics).toContain(
        `iotflow_queue_jobs{queue="store-postgres",partition="${k}",state="failed"} 0\n`,
      )
    }
  }, 420_000)

  it('`pnpm dlq:replay` lists a dead letter with its partition and replays it from there', async () => {
    const layout = queueLayout(queuePrefix, PARTITIONS)
    const partition = 4
    const redis = createRedisConnection(redisTargetOf(cluster.env()), 'producer', {
      enableOfflineQueue: true,
    })
    // A payload no schema matches: the writer fails it for good at once, into partition 4's failed set.
    const queue = new Queue('store-postgres', {
      connection: redis,
      prefix: `{${partitionPrefix(layout, partition)}}`,
    })
    try {
      await queue.add('store', { batch_id: 'poison', batches: [{ device_id: 4 }] }, { jobId: 'poison-1' })
      await waitFor(async () => (await queue.getFailedCount()) === 1, {
        what: 'the poison job dead-lettered',
      })
    } finally {
      await queue.close()
      await redis.quit()
    }
    const listed = runTool(env, 'packages/queue/src/dead-letters/dlq-replay-cli.ts')
    expect(listed.status, listed.stderr).toBe(0)
    expect(listed.stdout).toContain(`store-postgres p${partition} job poison-1  batch poison`)
    // Job ids are per partition: the wrong partition does not find it, its own does.
    const elsewhere = runTool(
      env,
      'packages/queue/src/dead-letters/dlq-replay-cli.ts',
      '--partition',
      '0',
      '--job',
      'poison-1',
    )
    expect(elsewhere.status).toBe(1)
    expect(elsewhere.stderr).toContain('job poison-1: not in a failed set')
    const replayed = runTool(
      env,
      'packages/queue/src/dead-letters/dlq-replay-cli.ts',
      '--partition',
      String(partition),
      '--job',
      'poison-1',
    )
    expect(replayed.status, replayed.stderr).toBe(0)
    expect(replayed.stdout).toContain(`replayed store-postgres p${partition} job poison-1`)
    const unknown = runTool(env, 'packages/queue/src/dead-letters/dlq-replay-cli.ts', '--partition', '6')
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toContain('no queue partition "6": QUEUE_PARTITIONS is 6')
  }, 120_000)
})
