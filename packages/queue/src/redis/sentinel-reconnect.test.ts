import { type PrivateRedisSentinel, redisCommand, startPrivateRedisSentinel, waitFor } from '@iotflow/testkit'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedisConnection, waitForReady } from './connection.js'

/** What ioredis's failover detector does on +switch-master: cut the connection's current attempt. */
const cutLikeTheFailoverDetector = (connection: Redis) =>
  (connection as unknown as { connector: { disconnect(): void } }).connector.disconnect()

describe('a Sentinel connection (real primary, replicas and sentinels)', () => {
  let sentinel: PrivateRedisSentinel
  beforeAll(async () => {
    sentinel = await startPrivateRedisSentinel()
  }, 60_000)
  afterAll(() => sentinel?.dispose())

  const target = () => ({
    mode: 'sentinel' as const,
    sentinels: sentinel.sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
    name: sentinel.name,
  })

  it('starts over when a failover notice cuts its search for the primary (ioredis would end it for good)', async () => {
    const connection = createRedisConnection(target(), 'worker') as Redis
    connection.on('error', () => {})
    // Cut while it asks the sentinels for the primary, as a +switch-master landing then does.
    expect(connection.status).toBe('connecting')
    cutLikeTheFailoverDetector(connection)
    await waitForReady(connection, 10_000)
    expect(await connection.ping()).toBe('PONG')
    await connection.quit()
  })

  /** Clients subscribed on the sentinels: the failover detectors' +switch-master subscriptions. */
  const subscribedOnSentinels = async () => {
    const lists = await Promise.all(sentinel.sentinels.map((s) => redisCommand(s.port, 'CLIENT', 'LIST')))
    return lists.flatMap((list) => String(list).split('\n')).filter((line) => / sub=[1-9]/.test(line)).length
  }

  it('stays closed once quit, with the failover detector closed too', async () => {
    const connection = createRedisConnection(target(), 'worker') as Redis
    connection.on('error', () => {})
    await waitForReady(connection)
    await waitFor(async () => (await subscribedOnSentinels()) > 0, {
      what: 'the failover detector subscribed',
    })
    await connection.quit()
    await waitFor(async () => (await subscribedOnSentinels()) === 0, { what: 'the detector closed' })
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(connection.status).toBe('end')
  })
})
