import { createAlertStreamDepths, createQueueDepths, queueLayout } from '@iotflow/queue'
import { deleteKeys, freePort, queueKeysPattern, waitFor } from '@iotflow/testkit'
import { type AppName, type AppProcess, spawnApp } from '../../test/support/app-process.js'
import type { BenchRedis } from './bench-redis.js'
import type { DrainProgress } from './measure.js'
import { readMetric } from './metric-reader.js'
import { stopProcess } from './stop-process.js'
import type { BenchStores } from './stores.js'
import type { Teardown } from './teardown.js'

export const ADMIN_TOKEN = 'bench-admin-token-0123456789'

export interface IotflowOptions {
  redis: BenchRedis
  stores: BenchStores
  /** Start the MQTT bridge too, on this broker. */
  mqttUrl?: string
  /** Start an alert evaluator too (delivering to the ALERTMANAGER_URL of `env`). */
  alertEvaluator?: boolean
  /** More environment for every app (e.g. BACKLOG_MAX_POINTS). */
  env?: Record<string, string>
  /** Arguments for node itself, per app (e.g. --cpu-prof). */
  nodeArgs?: (name: AppName) => string[]
}

/**
 * IoTFlow as in production: the gateway, both writers and (for MQTT) the bridge, each a process of
 * its own (`node --enable-source-maps dist/<name>/main.js`, built by `pnpm build`), on a queue prefix of their own, with the
 * scenario's databases. Resolves once every app is ready; the teardown stops them and deletes the
 * queue's keys.
 */
export async function startIotflow(teardown: Teardown, options: IotflowOptions) {
  const { stores } = options
  const { redis } = options
  const queuePrefix = await redis.queuePrefix()
  // Every partition's keys (`{prefix:p<k>}`) and the unpartitioned ones (`{prefix}`), on every master.
  teardown.add('the queue keys', queuePrefix, (prefix) =>
    deleteKeys(redis.connection, queueKeysPattern(prefix)),
  )
  const layout = queueLayout(queuePrefix, redis.partitions)
  const depths = teardown.add('the queue depth reader', createQueueDepths(redis.connection, layout), (d) =>
    d.close(),
  )
  // With an evaluator, the drain waits for its alert streams too: its work is in the measured window.
  const alertDepths = options.alertEvaluator ? createAlertStreamDepths(redis.connection, layout) : undefined
  const env = {
    LOG_LEVEL: 'warn',
    ...redis.env,
    QUEUE_PREFIX: queuePrefix,
    DATABASE_URL: stores.postgres.url,
    MIGRATE_ON_START: 'false',
    ADMIN_TOKEN,
    INFLUX_API: 'v1',
    INFLUX_URL: stores.influx.url,
    INFLUX_DATABASE: stores.influx.database,
    ...options.env,
  }
  const ports = {
    gateway: await freePort(),
    'writer-postgres': await freePort(),
    'writer-influx': await freePort(),
    'mqtt-bridge': await freePort(),
    'alert-evaluator': await freePort(),
  } satisfies Record<AppName, number>
  const names: AppName[] = ['gateway', 'writer-postgres', 'writer-influx']
  if (options.mqttUrl) names.push('mqtt-bridge')
  if (options.alertEvaluator) names.push('alert-evaluator')
  const apps = names.map((name) =>
    teardown.add(
      name,
      spawnApp(
        name,
        {
          ...env,
          ...(name === 'gateway' ? { PORT: String(ports.gateway) } : { HEALTH_PORT: String(ports[name]) }),
          ...(name === 'mqtt-bridge' ? { MQTT_URL: options.mqttUrl as string } : {}),
          ...(name.startsWith('writer-') && process.env.BENCH_WRITER_NICE
            ? { PROCESS_NICE: process.env.BENCH_WRITER_NICE }
            : {}),
        },
        options.nodeArgs?.(name),
      ),
      stopAndReportStalls,
    ),
  )
  const url = (name: AppName, path: string) => `http://127.0.0.1:${ports[name]}${path}`
  for (const app of apps) {
    await waitFor(
      async () => {
        if (!app.running()) throw new Error(`${app.name} exited:\n${app.output()}`)
        return (await fetch(url(app.name, '/health/ready'))).ok
      },
      { timeoutMs: 60_000, intervalMs: 250, what: `${app.name} to be ready` },
    ).catch((error: Error) => {
      throw new Error(`${error.message}\n${app.output()}`)
    })
  }

  /** Points each writer has committed so far, by its own count. */
  const storedPoints = async () => {
    const [postgres, influx] = await Promise.all([
      readMetric(url('writer-postgres', '/metrics'), 'iotflow_store_points_written_total'),
      readMetric(url('writer-influx', '/metrics'), 'iotflow_store_points_written_total'),
    ])
    return { postgres, influx }
  }
  return {
    gatewayUrl: url('gateway', ''),
    queuePrefix,
    apps,
    storedPoints,
    /** Telemetry requests the gateway refused for this reason so far, by its own count. */
    refusedRequests: (reason: 'backlog' | 'overloaded') =>
      readMetric(url('gateway', '/metrics'), 'iotflow_ingest_messages_total', `outcome="${reason}"`),
    /**
     * Points the gateway (HTTP) or the bridge (MQTT) acknowledged by its own count, points each
     * writer committed, and store jobs (and alert-stream entries) not yet done (waiting, active,
     * delayed, prioritized).
     */
    drainProgress: async (transport: 'http' | 'mqtt'): Promise<DrainProgress> => {
      const [acknowledged, stored, counts] = await Promise.all([
        readMetric(
          url(transport === 'http' ? 'gateway' : 'mqtt-bridge', '/metrics'),
          'iotflow_points_accepted_total',
          `transport="${transport}"`,
        ),
        storedPoints(),
        Promise.all([depths.read(), alertDepths?.read()]).then(([stores, alerts]) => ({
          ...stores,
          ...alerts,
        })),
      ])
      const pending = Object.values(counts).reduce(
        (n, c) => n + c.waiting + c.active + c.delayed + c.prioritized,
        0,
      )
      return { acknowledged, ...stored, pending }
    },
    /** The last lines each app printed: for a failure's message. */
    output: () => apps.map((app) => `--- ${app.name}\n${app.output()}`).join('\n'),
  }
}

export type IotflowApps = Awaited<ReturnType<typeof startIotflow>>

/**
 * Stops an app, and says so if a writer logged a stalled job: nothing is killed in a bench, so a
 * stall there is a lock that lapsed under load (WRITER_LOCK_DURATION_MS too short for the machine).
 */
async function stopAndReportStalls(app: AppProcess): Promise<void> {
  await stopProcess(app)
  const stalls = app
    .output()
    .split('\n')
    .filter((line) => line.includes('job stalled')).length
  if (stalls > 0)
    console.warn(`${app.name}: ${stalls} job(s) stalled under load (a lock lapsed in a live writer)`)
}
