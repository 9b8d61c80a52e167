import { startPrivateRedis } from '@iotflow/testkit'
import { afterAll, expect, it } from 'vitest'
import { createRedisConnection } from './connection.js'
import { reportRedisDurability } from './redis-durability.js'

// Private servers: each test sets up (or changes) the Redis it reads, touching no one else's.
const servers: Awaited<ReturnType<typeof startPrivateRedis>>[] = []
const connections: ReturnType<typeof createRedisConnection>[] = []

afterAll(async () => {
  await Promise.all(connections.map((c) => c.quit()))
  await Promise.all(servers.map((s) => s.dispose()))
})

async function redisWith(options: Parameters<typeof startPrivateRedis>[0]) {
  const server = await startPrivateRedis(options)
  servers.push(server)
  const connection = createRedisConnection(server.url, 'worker')
  connections.push(connection)
  return connection
}

async function report(connection: ReturnType<typeof createRedisConnection>) {
  const logged: { level: string; obj: object; msg?: string }[] = []
  const durability = await reportRedisDurability(connection, {
    info: (obj, msg) => logged.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => logged.push({ level: 'warn', obj, msg }),
  })
  return { durability, logged }
}

it('says durable, in one info line, for a Redis with an append-only file and noeviction', async () => {
  const { durability, logged } = await report(await redisWith({ appendfsync: 'everysec' }))
  expect(durability).toEqual({
    durable: true,
    appendonly: 'yes',
    appendfsync: 'everysec',
    maxmemory_policy: 'noeviction',
    problems: [],
  })
  expect(logged).toEqual([
    { level: 'info', obj: expect.any(Object), msg: expect.stringContaining('durable') },
  ])
})

it('warns loudly for a Redis started with --appendonly no, and for one that may evict keys', async () => {
  const connection = await redisWith({})
  const { durability, logged } = await report(connection)
  expect(durability).toMatchObject({ durable: false, appendonly: 'no', maxmemory_policy: 'noeviction' })
  expect(durability.problems).toEqual([expect.stringContaining('appendonly is no')])
  expect(logged).toEqual([
    {
      level: 'warn',
      obj: expect.objectContaining({ appendonly: 'no' }),
      msg: expect.stringContaining('REDIS IS NOT DURABLE'),
    },
  ])

  await connection.config('SET', 'maxmemory-policy', 'allkeys-lru')
  const evicting = await report(connection)
  expect(evicting.durability.problems).toEqual([
    expect.stringContaining('appendonly is no'),
    expect.stringContaining('maxmemory-policy is allkeys-lru'),
  ])
  expect(evicting.logged[0]?.level).toBe('warn')
})

it('says it cannot tell when Redis refuses CONFIG, as managed Redis does', async () => {
  const { durability, logged } = await report(
    await redisWith({ appendfsync: 'everysec', extraArgs: ['--rename-command', 'CONFIG', ''] }),
  )
  expect(durability).toMatchObject({ durable: null, appendonly: null, maxmemory_policy: null })
  expect(durability.problems).toEqual([expect.stringContaining('cannot tell')])
  expect(logged).toEqual([
    { level: 'warn', obj: expect.any(Object), msg: expect.stringContaining('REDIS DURABILITY UNKNOWN') },
  ])
})
