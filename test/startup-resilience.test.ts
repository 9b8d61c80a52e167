import { readFileSync } from 'node:fs'
import {
  freePort,
  registerDeviceOverHttp,
  startPrivatePostgres,
  startPrivateRedis,
  uniqueName,
  waitFor,
} from '@iotflow/testkit'
import postgres from 'postgres'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type AppProcess, spawnApp } from './support/app-process.js'
import { ADMIN_TOKEN } from './support/pipeline.js'

let pg: Awaited<ReturnType<typeof startPrivatePostgres>>
let redis: Awaited<ReturnType<typeof startPrivateRedis>>
const apps: AppProcess[] = []

beforeAll(async () => {
  ;[pg, redis] = await Promise.all([startPrivatePostgres(), startPrivateRedis()])
})

afterAll(async () => {
  await Promise.all(apps.map((app) => app.stop('SIGKILL')))
  await Promise.all([pg?.dispose(), redis?.dispose()])
})

/** The nice value of a process (field 19 of /proc/<pid>/stat). */
const niceOf = (pid: number | undefined) =>
  Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[16])

const answers = async (url: string) => (await fetch(url)).status === 200

it('gateway and writer started while Redis and PostgreSQL are down wait for them, then work and stop cleanly', async () => {
  await Promise.all([pg.stop(), redis.stop()])
  const [port, healthPort] = [await freePort(), await freePort()]
  const env = {
    REDIS_URL: redis.url,
    DATABASE_URL: pg.url,
    QUEUE_PREFIX: uniqueName('startup'),
    ADMIN_TOKEN,
    PORT: String(port),
    HEALTH_PORT: String(healthPort),
    WRITER_LINGER_MS: '10',
  }
  const gateway = spawnApp('gateway', env)
  const writer = spawnApp('writer-postgres', { ...env, PROCESS_NICE: '10' })
  apps.push(gateway, writer)

  // Both dependencies down: the apps say they wait, and keep waiting instead of exiting.
  for (const app of [gateway, writer]) {
    await waitFor(() => app.output().includes('not available yet; retrying'), {
      timeoutMs: 60_000, // starting node + tsx takes long on a loaded machine
      what: `${app.name} to report that it waits`,
    })
  }
  await new Promise((resolve) => setTimeout(resolve, 2_000))
  expect(gateway.running(), gateway.output()).toBe(true)
  expect(writer.running(), writer.output()).toBe(true)

  await Promise.all([pg.start(), redis.start()])
  const base = `http://127.0.0.1:${port}`
  await waitFor(() => answers(`${base}/health/ready`), { timeoutMs: 40_000, what: 'the gateway to be ready' })
  await waitFor(() => answers(`http://127.0.0.1:${healthPort}/health/ready`), {
    timeoutMs: 40_000,
    what: 'the writer to be ready',
  })

  // PROCESS_NICE is applied: the writer runs at 10 as asked, the gateway at the default 0.
  expect(niceOf(writer.pid)).toBe(10)
  expect(niceOf(gateway.pid)).toBe(0)

  const { id: deviceId, apiKey } = await registerDeviceOverHttp(base, ADMIN_TOKEN, 'late-starter')
  const sent = await fetch(`${base}/api/v1/telemetry`, {
    method: 'POST',
    headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
    body: JSON.stringify({ points: [{ timestamp: Date.UTC(2026, 10, 1), data: { level: 7 } }] }),
  })
  expect(sent.status).toBe(202)
  const sql = postgres(pg.url, { max: 1, onnotice: () => {} })
  try {
    const stored = await waitFor(
      async () => {
        const rows = await sql<{ data: { level: number } }[]>`
          SELECT data FROM telemetry WHERE device_id = ${deviceId}`
        return rows.length === 1 && rows
      },
      { timeoutMs: 10_000, what: 'the point in PostgreSQL' },
    )
    expect(stored[0]?.data).toEqual({ level: 7 })
  } finally {
    await sql.end({ timeout: 1 })
  }

  // SIGTERM: each closes its connections and exits 0 well inside its deadline.
  const [gatewayExit, writerExit] = await Promise.all([gateway.stop('SIGTERM'), writer.stop('SIGTERM')])
  expect(gatewayExit, gateway.output()).toEqual({ code: 0, signal: null })
  expect(writerExit, writer.output()).toEqual({ code: 0, signal: null })
}, 180_000)
