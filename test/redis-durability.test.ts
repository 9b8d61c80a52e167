import {
  createTestDatabase,
  createTestInfluxDatabase,
  freePort,
  startPrivateRedis,
  uniqueName,
  waitFor,
} from '@iotflow/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AppName, type AppProcess, spawnApp } from './support/app-process.js'
import { bridgeEnv } from './support/mqtt.js'
import { ADMIN_TOKEN } from './support/pipeline.js'

/**
 * Every app, as a process, on a Redis of the test's own: one started with `--appendonly no` (what
 * the shared development Redis runs), one with an append-only file. Each app says at start what its
 * Redis promises (a loud warning without AOF) and shows it in /health/ready.
 */
const APPS: AppName[] = ['gateway', 'writer-postgres', 'writer-influx', 'mqtt-bridge']

let db: Awaited<ReturnType<typeof createTestDatabase>>
let influx: Awaited<ReturnType<typeof createTestInfluxDatabase>>
const redises: Awaited<ReturnType<typeof startPrivateRedis>>[] = []
const running: AppProcess[] = []

beforeAll(async () => {
  db = await createTestDatabase()
  influx = await createTestInfluxDatabase()
})

afterAll(async () => {
  await Promise.all(running.map((app) => app.stop('SIGTERM')))
  await Promise.all(redises.map((r) => r.dispose()))
  await influx?.drop()
  await db?.drop()
})

/** Starts the four apps on `redisUrl`; resolves with each one's /health/ready body once it answers 200. */
async function startAll(redisUrl: string) {
  const common = {
    ...bridgeEnv({ databaseUrl: db.url, queuePrefix: uniqueName('durability'), redisUrl }),
    ADMIN_TOKEN,
    INFLUX_API: 'v1',
    INFLUX_URL: influx.url,
    INFLUX_DATABASE: influx.database,
    LOG_LEVEL: 'info',
    MQTT_CONNECTIONS: '1',
  }
  const started = await Promise.all(
    APPS.map(async (name) => {
      const port = await freePort()
      const app = spawnApp(name, {
        ...common,
        ...(name === 'gateway' ? { PORT: String(port) } : { HEALTH_PORT: String(port) }),
      })
      running.push(app)
      const url = `http://127.0.0.1:${port}/health/ready`
      const body = await waitFor(
        async () => {
          const res = await fetch(url).catch(() => undefined)
          return res?.status === 200 ? ((await res.json()) as { redis_durability?: unknown }) : undefined
        },
        { timeoutMs: 60_000, intervalMs: 200, what: `${name} ready\n${app.output()}` },
      )
      return { app, body }
    }),
  )
  return started
}

describe('what Redis promises, as each app reports it', () => {
  it('a Redis started with --appendonly no: every app warns loudly and /health/ready says not durable', {
    timeout: 120_000,
  }, async () => {
    const redis = await startPrivateRedis()
    redises.push(redis)
    for (const { app, body } of await startAll(redis.url)) {
      expect({ app: app.name, durability: body.redis_durability }).toEqual({
        app: app.name,
        durability: {
          durable: false,
          appendonly: 'no',
          appendfsync: 'everysec',
          maxmemory_policy: 'noeviction',
          problems: [expect.stringContaining('appendonly is no')],
        },
      })
      await waitFor(() => app.output().includes('REDIS IS NOT DURABLE'), { what: `${app.name}'s warning` })
      const warning = app
        .output()
        .split('\n')
        .find((line) => line.includes('REDIS IS NOT DURABLE'))
      expect(JSON.parse(warning as string)).toMatchObject({ level: 40, appendonly: 'no' })
      await app.stop('SIGTERM')
    }
  })

  it('a Redis with an append-only file: every app says durable', { timeout: 120_000 }, async () => {
    const redis = await startPrivateRedis({ appendfsync: 'everysec' })
    redises.push(redis)
    for (const { app, body } of await startAll(redis.url)) {
      expect({ app: app.name, durable: body.redis_durability }).toEqual({
        app: app.name,
        durable: expect.objectContaining({ durable: true, appendonly: 'yes', problems: [] }),
      })
      await waitFor(() => app.output().includes('redis is durable'), { what: `${app.name}'s report` })
      expect(app.output()).not.toContain('REDIS IS NOT DURABLE')
      await app.stop('SIGTERM')
    }
  })
})
