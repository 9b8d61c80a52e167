import { setTimeout as sleep } from 'node:timers/promises'
import { redisTargetOf } from '@iotflow/config'
import { queryV1 } from '@iotflow/influx'
import {
  bullPrefix,
  createQueueDepths,
  createRedisConnection,
  type JobCounts,
  queueLayout,
} from '@iotflow/queue'
import {
  createTestDatabase,
  createTestInfluxDatabase,
  deleteKeys,
  freePort,
  registerDeviceOverHttp,
  serviceUrls,
  uniqueName,
  waitFor,
} from '@iotflow/testkit'
import { compareStores, influxPoints, postgresPoints } from '@iotflow/verify'
import { type AppName, type AppProcess, spawnApp } from '../support/app-process.js'
import { ADMIN_TOKEN } from '../support/pipeline.js'
import { type LoadDevice, LoadGenerator } from './load-generator.js'

/** A running app of the scenario that the fault may kill and restart (same env, same ports). */
export class AppInstance {
  process: AppProcess
  constructor(
    readonly name: AppName,
    private readonly env: Record<string, string>,
    readonly healthUrl: string,
  ) {
    this.process = spawnApp(name, env)
  }

  /** Waits until it answers /health (started: migrated, connected to Redis). */
  async ready() {
    await waitFor(async () => (await fetch(this.healthUrl)).ok, {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: `${this.name} at ${this.healthUrl}\n${this.process.output()}`,
    })
  }

  kill(signal: NodeJS.Signals = 'SIGKILL') {
    return this.process.stop(signal)
  }

  async restart() {
    this.process = spawnApp(this.name, this.env)
    await this.ready()
  }

  /** SIGTERM, then SIGKILL if it has not exited after its own 20 s deadline (plus a margin). */
  async stop() {
    const timer = setTimeout(() => this.process.stop('SIGKILL'), 25_000)
    try {
      return await this.process.stop('SIGTERM')
    } finally {
      clearTimeout(timer)
    }
  }
}

export interface ScenarioServices {
  redisUrl?: string
  /**
   * Another Redis topology, as the apps' settings (`REDIS_SENTINELS` + `REDIS_SENTINEL_NAME`, or
   * `REDIS_CLUSTER_NODES`), in place of `redisUrl`: a setup of the scenario's own, removed after it.
   */
  redisEnv?: Record<string, string>
  /** A PostgreSQL server URL; the scenario creates its own database there. */
  postgresUrl?: string
  influxUrl?: string
}

export interface ScenarioContext {
  gateways: AppInstance[]
  postgresWriters: AppInstance[]
  influxWriters: AppInstance[]
  load: LoadGenerator
  influx: Awaited<ReturnType<typeof createTestInfluxDatabase>>
  queuePrefix: string
  env: Record<string, string>
  /** Lines printed under the scenario's figures. */
  notes: string[]
  /** Named checks made during the run (e.g. "Postgres current while InfluxDB was down"). */
  checks: Record<string, boolean>
  queueCounts(): Promise<Record<string, JobCounts>>
  /** True until every point of the load is acknowledged. */
  loadRunning(): boolean
  /** Resolves once this share of the planned points is acknowledged. */
  untilAcknowledged(share: number): Promise<void>
  /** Resolves once `queue` has jobs in a writer's hands: a kill then lands mid-batch. */
  untilActive(queue: StoreQueueName): Promise<void>
  /** The ids of the jobs in writers' hands (BullMQ's active list) of `queue`. */
  heldJobs(queue: StoreQueueName): Promise<string[]>
  /** Resolves once every one of `jobIds` of `queue` is stored (a completed store job is removed). */
  untilStored(queue: StoreQueueName, jobIds: string[]): Promise<void>
  /** From a writer's SIGKILL until the jobs it held were written again, when a scenario measures it. */
  recoverySeconds?: number
  /** Points the scenario's devices have in PostgreSQL, or in InfluxDB. */
  storedCount(store: 'postgres' | 'influx'): Promise<number>
  registerDevice(name: string): Promise<LoadDevice>
  /** The i-th load device. */
  device(i: number): LoadDevice
}

export type StoreQueueName = 'store-postgres' | 'store-influx'

export interface ScenarioSpec {
  name: string
  services?: ScenarioServices
  gateways?: number
  writersPerStore?: number
  /** Points in all; at least 100,000 for the suite. */
  points?: number
  loadDurationMs?: number
  /** Settings every app of the scenario runs with (e.g. REDIS_MIN_REPLICAS_ACK). */
  appEnv?: Record<string, string>
  /** Played beside the load. */
  fault(ctx: ScenarioContext): Promise<void>
  /** After the first drain (e.g. fix a cause and replay the dead letters); the run drains again. */
  afterDrain?(ctx: ScenarioContext): Promise<void>
}

export interface ScenarioResult {
  name: string
  sent: number
  acknowledged: number
  storedPostgres: number
  storedInflux: number
  lostPostgres: number
  lostInflux: number
  duplicated: number
  /** Stored but never sent, or stored with other values than sent. */
  phantom: number
  storesAgree: boolean
  drainSeconds: number
  recoverySeconds: number | undefined
  /** Non-202 answers and client errors during the run, e.g. { "503": 12, "ECONNREFUSED": 40 }. */
  retriedOutcomes: Record<string, number>
  refused: string[]
  checks: Record<string, boolean>
  notes: string[]
}

const DEVICES = 20
const POINTS_PER_REQUEST = 250
const DRAIN_TIMEOUT_MS = 8 * 60_000

/**
 * One fault scenario, end to end, against real services and apps in processes of their own: start
 * the apps, send numbered points under load while the fault plays, wait until the queues are empty,
 * then compare the acknowledged set with what each store holds.
 */
export async function runScenario(spec: ScenarioSpec): Promise<ScenarioResult> {
  const services = {
    redisUrl: spec.services?.redisUrl ?? serviceUrls.redis,
    postgresUrl: spec.services?.postgresUrl ?? serviceUrls.postgres,
    influxUrl: spec.services?.influxUrl ?? serviceUrls.influx,
  }
  const db = await createTestDatabase(services.postgresUrl)
  const influx = await createTestInfluxDatabase(services.influxUrl)
  const queuePrefix = uniqueName('faults')
  const redisEnv = spec.services?.redisEnv ?? { REDIS_URL: services.redisUrl }
  const env = {
    REDIS_URL: '',
    ...redisEnv,
    ...spec.appEnv,
    DATABASE_URL: db.url,
    QUEUE_PREFIX: queuePrefix,
    ADMIN_TOKEN,
    INFLUX_API: 'v1',
    INFLUX_URL: influx.url,
    INFLUX_DATABASE: influx.database,
    INFLUX_TIMEOUT_MS: '5000',
    LOG_LEVEL: 'warn',
  }
  const inspector = createRedisConnection(redisTargetOf(redisEnv), 'worker')
  inspector.on('error', () => {}) // the scenario may restart Redis
  const depths = createQueueDepths(inspector, queueLayout(queuePrefix))
  const apps: AppInstance[] = []
  const start = async (name: AppName, count: number, portVariable: 'PORT' | 'HEALTH_PORT') => {
    const started: AppInstance[] = []
    for (let i = 0; i < count; i++) {
      const port = await freePort()
      const app = new AppInstance(
        name,
        { ...env, [portVariable]: String(port) },
        `http://127.0.0.1:${port}/health`,
      )
      apps.push(app)
      started.push(app)
    }
    await Promise.all(started.map((app) => app.ready()))
    return started
  }

  try {
    const gateways = await start('gateway', spec.gateways ?? 1, 'PORT')
    const [postgresWriters, influxWriters] = await Promise.all([
      start('writer-postgres', spec.writersPerStore ?? 1, 'HEALTH_PORT'),
      start('writer-influx', spec.writersPerStore ?? 1, 'HEALTH_PORT'),
    ])
    const gatewayUrls = gateways.map((g) => g.healthUrl.replace(/\/health$/, ''))
    const load = new LoadGenerator(() => gatewayUrls)

    const registerDevice = (name: string): Promise<LoadDevice> =>
      registerDeviceOverHttp(gatewayUrls[0] as string, ADMIN_TOKEN, name)
    const devices: LoadDevice[] = []
    for (let i = 0; i < DEVICES; i++) devices.push(await registerDevice(`load-${i}`))

    const points = spec.points ?? 100_000
    const pointsPerDevice = Math.ceil(points / DEVICES)
    const queueCounts = () => depths.read()
    const allDevices = () => [...devices, ...extraDevices]
    const extraDevices: LoadDevice[] = []
    const ctx: ScenarioContext = {
      gateways,
      postgresWriters,
      influxWriters,
      load,
      influx,
      queuePrefix,
      env,
      notes: [],
      checks: {},
      queueCounts,
      loadRunning: () => loadRunning,
      untilAcknowledged: (share) =>
        waitFor(() => load.acknowledged >= share * pointsPerDevice * DEVICES, {
          timeoutMs: 10 * 60_000,
          intervalMs: 50,
          what: `${share * 100} % of the points acknowledged`,
        }).then(() => undefined),
      untilActive: (queue) =>
        waitFor(async () => ((await queueCounts())[queue]?.active ?? 0) > 0, {
          timeoutMs: 60_000,
          intervalMs: 20,
          what: `jobs active in ${queue}`,
        }).then(() => undefined),
      heldJobs: (queue) => inspector.lrange(`${bullPrefix(queuePrefix)}:${queue}:active`, 0, -1),
      untilStored: (queue, jobIds) =>
        waitFor(
          async () => {
            const keys = jobIds.map((id) => `${bullPrefix(queuePrefix)}:${queue}:${id}`)
            return keys.length === 0 || (await inspector.exists(...keys)) === 0
          },
          { timeoutMs: 5 * 60_000, intervalMs: 100, what: `the jobs held in ${queue} to be stored` },
        ).then(() => undefined),
      storedCount: async (store) => {
        if (store === 'postgres') {
          const ids = allDevices().map((d) => d.id)
          const [row] = await db.sql<{ n: number }[]>`
            SELECT count(*)::int AS n FROM telemetry WHERE device_id = ANY(${ids}::int[])`
          return row?.n ?? 0
        }
        // Every load point has a `seq` field; anything a scenario writes straight into InfluxDB has not.
        const [series] = await queryV1(influx.url, influx.database, 'SELECT count(seq) FROM telemetry')
        return Number(series?.values[0]?.[1] ?? 0)
      },
      registerDevice: async (name) => {
        const device = await registerDevice(name)
        extraDevices.push(device)
        return device
      },
      device: (i) => devices[i] as LoadDevice,
    }

    const loadStarted = performance.now()
    let loadRunning = true
    const loadRun = load
      .run({
        devices,
        pointsPerDevice,
        pointsPerRequest: POINTS_PER_REQUEST,
        durationMs: spec.loadDurationMs ?? 30_000,
        concurrency: 16,
        baseTime: Date.UTC(2026, 10, 20),
      })
      .finally(() => {
        loadRunning = false
      })
    let loadEnded = 0
    const faultPlayed = spec.fault(ctx).then(() => performance.now())
    await loadRun.then(() => {
      loadEnded = performance.now()
    })
    const faultEnded = await faultPlayed
    const seconds = (t: number) => `${((t - loadStarted) / 1000).toFixed(1)} s`
    ctx.notes.push(`load: ${seconds(loadEnded)}; fault played until ${seconds(faultEnded)}`)
    loadEnded = Math.max(loadEnded, faultEnded)

    const drain = async () => {
      let counts: Record<string, JobCounts> = {}
      await waitFor(
        async () => {
          counts = await queueCounts()
          return Object.values(counts).every((c) => c.waiting + c.active + c.delayed + c.prioritized === 0)
        },
        { timeoutMs: DRAIN_TIMEOUT_MS, intervalMs: 250, what: `the queues of ${spec.name} to drain` },
      ).catch(async (error: Error) => {
        // What is stuck where: who is connected to Redis and blocked on what (a worker that stopped
        // taking jobs shows here), and what the apps said about it. Read once, when it failed.
        const clients = String(await inspector.call('CLIENT', 'LIST').catch((e) => e))
        throw new Error(
          `${error.message}; they hold ${JSON.stringify(counts)}\nRedis clients:\n${clients}\n` +
            apps.map((app) => `--- ${app.name}\n${app.process.output()}`).join('\n'),
        )
      })
    }
    await drain()
    const drainSeconds = (performance.now() - loadEnded) / 1000
    if (spec.afterDrain) {
      await spec.afterDrain(ctx)
      await drain()
    }
    return {
      name: spec.name,
      drainSeconds,
      recoverySeconds: ctx.recoverySeconds,
      ...(await compareWithAcknowledged(ctx, db, load, allDevices())),
    }
  } finally {
    await Promise.all(apps.map((app) => app.stop()))
    await depths.close()
    // A topology of the scenario's own is removed whole after it.
    if (!spec.services?.redisEnv)
      await deleteKeys(inspector as Parameters<typeof deleteKeys>[0], `{${queuePrefix}}:*`).catch(() => {})
    await inspector.quit()
    await influx.drop().catch(() => {})
    await db.drop()
  }
}

const EVERYTHING = { since: 0, until: 9_000_000_000_000 }

/** The acknowledged set against each store, point by point, and the two stores against each other. */
async function compareWithAcknowledged(
  ctx: ScenarioContext,
  db: Awaited<ReturnType<typeof createTestDatabase>>,
  load: LoadGenerator,
  devices: LoadDevice[],
): Promise<Omit<ScenarioResult, 'name' | 'drainSeconds' | 'recoverySeconds'>> {
  let [storedPostgres, storedInflux, lostPostgres, lostInflux, duplicated, phantom] = [0, 0, 0, 0, 0, 0]
  for (const device of devices) {
    const [pg, ix] = await Promise.all([
      postgresPoints(db.sql, device.id, EVERYTHING),
      influxPoints(ctx.influx, device.id, EVERYTHING),
    ])
    storedPostgres += pg.points.size
    storedInflux += ix.points.size
    duplicated += pg.duplicates + ix.duplicates
    for (const t of load.points('acknowledged', device.id).keys()) {
      if (!pg.points.has(t)) lostPostgres++
      if (!ix.points.has(t)) lostInflux++
    }
    const sent = load.points('sent', device.id)
    for (const stored of [pg.points, ix.points]) {
      for (const [t, fields] of stored) {
        const expected = sent.get(t)
        if (!expected || JSON.stringify(fields) !== JSON.stringify(expected)) phantom++
      }
    }
  }
  const comparison = await compareStores(
    db.sql,
    ctx.influx,
    EVERYTHING,
    devices.map((d) => d.id),
  )
  return {
    sent: load.sent,
    acknowledged: load.acknowledged,
    storedPostgres,
    storedInflux,
    lostPostgres,
    lostInflux,
    duplicated,
    phantom,
    storesAgree: comparison.agree,
    retriedOutcomes: Object.fromEntries([...load.outcomes].filter(([outcome]) => outcome !== '202')),
    refused: load.refused,
    checks: ctx.checks,
    notes: ctx.notes,
  }
}

export const pause = (ms: number) => sleep(ms)
