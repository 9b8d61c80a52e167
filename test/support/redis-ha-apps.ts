import { spawnSync } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { allPartitions, bullPrefix, partitionPrefix, queueLayout } from '@iotflow/queue'
import { freePort, type PrivateRedisCluster, serviceUrls, uniqueName, waitFor } from '@iotflow/testkit'
import { type AppName, type AppProcess, spawnApp } from './app-process.js'
import { ADMIN_TOKEN } from './pipeline.js'

/**
 * What every app of these tests runs with on a Redis topology of the test's own (`redisEnv`: its
 * REDIS_SENTINELS or REDIS_CLUSTER_NODES): its own database and InfluxDB database, migrated already.
 * A REDIS_URL inherited from the environment would be a second Redis mode: refused, so it is emptied.
 */
export function appsEnv(options: {
  redisEnv: Record<string, string>
  queuePrefix: string
  databaseUrl: string
  influxDatabase: string
}): Record<string, string> {
  return {
    REDIS_URL: '',
    ...options.redisEnv,
    QUEUE_PREFIX: options.queuePrefix,
    DATABASE_URL: options.databaseUrl,
    ADMIN_TOKEN,
    MIGRATE_ON_START: 'false',
    INFLUX_API: 'v1',
    INFLUX_URL: serviceUrls.influx,
    INFLUX_DATABASE: options.influxDatabase,
    WRITER_LINGER_MS: '10',
    LOG_LEVEL: 'warn',
  }
}

/**
 * Starts apps as real processes on the environment `env()` gives (read at each start, so a test may
 * set it in its beforeAll), each on a free port, and resolves with its URL once /health/ready says
 * ready. `stopAll` SIGKILLs every app it started.
 */
export function createAppStarter(env: () => Record<string, string>) {
  const running: AppProcess[] = []
  return {
    /** Every app started so far (for a failing test's message: what each said). */
    running: running as readonly AppProcess[],
    async start(name: AppName, extra: Record<string, string> = {}): Promise<string> {
      const port = await freePort()
      const app = spawnApp(name, {
        ...env(),
        ...extra,
        ...(name === 'gateway' ? { PORT: String(port) } : { HEALTH_PORT: String(port) }),
      })
      running.push(app)
      const url = `http://127.0.0.1:${port}`
      await waitFor(
        async () => {
          if (!app.running()) throw new Error(`${name} exited:\n${app.output()}`)
          return (await fetch(`${url}/health/ready`).catch(() => undefined))?.ok === true
        },
        { timeoutMs: 60_000, intervalMs: 200, what: `${name} to be ready` },
      )
      return url
    },
    stopAll: () => Promise.all(running.map((app) => app.stop('SIGKILL'))).then(() => undefined),
  }
}

/** POSTs points to /api/v1/telemetry, again on 503 (Redis failing over) until answered otherwise. */
export async function postTelemetry(
  gateway: string,
  apiKey: string,
  points: { timestamp: number; data: object }[],
): Promise<Response | undefined> {
  for (;;) {
    const response = await fetch(`${gateway}/api/v1/telemetry`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
      body: JSON.stringify({ points }),
    }).catch(() => undefined)
    if (response?.status !== 503) return response
    await sleep(100)
  }
}

/** Runs a tool (a TypeScript entry point) as operators run it, with `env` added to this process's. */
export function runTool(env: Record<string, string>, script: string, ...args: string[]) {
  const result = spawnSync('node', ['--import', 'tsx', script, ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

/**
 * A queue prefix whose `partitions` partitions fall on every master of `cluster` (on as many as there
 * are partitions, when fewer), and where each partition lives (master port → partitions). Where the
 * hash tags fall is the hash's choice: about one prefix in four leaves one of 3 masters without any
 * of 6 partitions. As an operator would check with `redis-cli cluster keyslot` (docs/redis-ha.md),
 * prefixes are tried until one covers them all.
 */
export async function spreadQueuePrefix(cluster: PrivateRedisCluster, partitions: number, name: string) {
  const masters = Math.min((await cluster.masters()).length, partitions)
  for (let attempt = 0; attempt < 50; attempt++) {
    const prefix = uniqueName(name)
    const layout = queueLayout(prefix, partitions)
    const byMaster = await cluster.mastersOfKeys(
      allPartitions(layout).map((k) => bullPrefix(partitionPrefix(layout, k))),
    )
    if (byMaster.size === masters) return { prefix, byMaster }
  }
  throw new Error(`no queue prefix of 50 spreads ${partitions} partitions over ${masters} masters`)
}
