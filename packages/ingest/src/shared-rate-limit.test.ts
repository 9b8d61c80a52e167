import { setTimeout as sleep } from 'node:timers/promises'
import { loadMqttBridgeConfig } from '@iotflow/config'
import { createRedisConnection, type RedisConnection, waitForReady } from '@iotflow/queue'
import { createTestDatabase, serviceUrls, type TestDatabase } from '@iotflow/testkit'
import { useTestRedis } from '@iotflow/testkit/use-test-redis'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { assembleIngest, type IngestAssembly } from './ingest-assembly.js'

/**
 * Two ingest instances (as two gateways or bridges) on one Redis and one queue, each with its own
 * connection and its own views of the buckets: a device's limit is shared, within the bound that
 * docs/telemetry-contract.md ("Rate limits") gives for takes admitted without asking Redis.
 */
const redis = useTestRedis('shared-limit')
let db: TestDatabase
const instances: IngestAssembly[] = []
const connections: RedisConnection[] = []

beforeAll(async () => {
  db = await createTestDatabase()
  const config = loadMqttBridgeConfig({
    REDIS_URL: serviceUrls.redis,
    DATABASE_URL: db.url,
    QUEUE_PREFIX: redis.prefix,
  })
  for (let i = 0; i < 2; i++) {
    const connection = createRedisConnection(serviceUrls.redis, 'producer')
    await waitForReady(connection)
    connections.push(connection)
    instances.push(
      await assembleIngest({
        config,
        sql: db.sql,
        redis: connection,
        groupCommit: { maxPoints: 1000, lingerMs: 2, maxInFlight: 2 },
        logger: { warn() {} },
      }),
    )
  }
})

afterAll(async () => {
  for (const instance of instances) await instance.close()
  for (const connection of connections) connection.disconnect()
  await db?.drop()
})

const T0 = Date.UTC(2026, 5, 2, 12)

describe('one device limit shared by two ingest instances', () => {
  it('admits at most burst + rate × time + half a burst per instance over a window, and refuses the rest', async () => {
    const perSecond = 800
    const burst = 200
    const sender = {
      id: 41,
      device_type: 'sensor',
      rate_limit: { points_per_second: perSecond, burst_points: burst },
    }
    let admitted = 0
    let refused = 0
    let nextTime = T0
    const request = async (instance: IngestAssembly, count: number) => {
      const points = Array.from({ length: count }, () => ({ timestamp: nextTime++, data: { v: 1 } }))
      const outcome = await instance.ingestService.ingest(sender, { points })
      if (outcome.status === 202) admitted += count
      else if (outcome.status === 429) refused++
      else throw new Error(`unexpected ${outcome.status}`)
    }
    // Each instance learns the bucket.
    for (const instance of instances) await request(instance, 1)
    // Takes sent inside a MULTI: the bound below must hold with them, not only with exact checks.
    const inMulti = connections.map((connection) => vi.spyOn(connection, 'sendCommand'))
    const started = performance.now()
    // Every 250 ms (time enough to refill the burst), both instances at once receive 50 requests of
    // 1 to 8 points (about 450 points, twice the burst): each admits what its view allows without
    // asking, unaware of the other's takes, and asks Redis for the rest; 8 times.
    for (let round = 0; round < 8; round++) {
      const next = performance.now() + 250
      await Promise.all(
        instances.flatMap((instance, i) =>
          Array.from({ length: 50 }, (_, k) => request(instance, 1 + ((round + i + k) % 8))),
        ),
      )
      await sleep(Math.max(0, next - performance.now()))
    }
    const seconds = (performance.now() - started) / 1000
    const takesInMulti = inMulti
      .flatMap((spy) => spy.mock.calls)
      .filter(([command]) => (command as unknown as { inTransaction: boolean }).inTransaction)
      .filter(([command]) => command.args.some((arg) => String(arg).includes(':bucket:device:41'))).length
    for (const spy of inMulti) spy.mockRestore()

    const bound = burst + perSecond * seconds + 2 * (burst / 2)
    expect(takesInMulti).toBeGreaterThan(8)
    expect(refused).toBeGreaterThan(0)
    expect(admitted).toBeLessThanOrEqual(bound)
    // Not refusing more than it must either (part of each burst's refill is lost to the cap).
    expect(admitted).toBeGreaterThanOrEqual(burst + (perSecond * seconds) / 2)
    // Any debt is within the bound: each instance spends at most half a burst unseen.
    const state = await redis.redis().get(`{${redis.prefix}}:bucket:device:41`)
    expect(Number(state?.split(' ')[0])).toBeGreaterThanOrEqual(-2 * (burst / 2))
  })
})
