/**
 * The fault suite (`pnpm test:faults`): the eight scenarios of issue 4, a rolling restart and two Redis failovers (issue 14), each ≥ 100,000 numbered points under load
 * while a fault plays, then drained and checked point by point: every acknowledged point is in
 * PostgreSQL exactly once and in InfluxDB, nothing is stored that was never sent, and the two stores
 * agree. Apps run as separate processes; services that a scenario stops are private instances.
 */
import { spawnSync } from 'node:child_process'
import {
  type PrivateServer,
  redisCommand,
  startPrivateInfluxd,
  startPrivatePostgres,
  startPrivateRedis,
  startPrivateRedisCluster,
  startPrivateRedisSentinel,
} from '@iotflow/testkit'
import { afterAll, expect, it } from 'vitest'
import { pause, runScenario, type ScenarioContext, type ScenarioResult } from './fault-scenario.js'
import { printResults } from './print-results.js'

const results: ScenarioResult[] = []
afterAll(() => printResults(results))

function expectNothingLost(result: ScenarioResult) {
  results.push(result)
  expect(result.acknowledged).toBeGreaterThanOrEqual(100_000)
  expect({
    everythingSentWasAcknowledged: result.acknowledged === result.sent,
    lostPostgres: result.lostPostgres,
    lostInflux: result.lostInflux,
    duplicated: result.duplicated,
    phantom: result.phantom,
    storesAgree: result.storesAgree,
    refused: result.refused,
    serverErrors: Object.keys(result.retriedOutcomes).filter((o) => /^5\d\d$/.test(o) && o !== '503'),
  }).toEqual({
    everythingSentWasAcknowledged: true,
    lostPostgres: 0,
    lostInflux: 0,
    duplicated: 0,
    phantom: 0,
    storesAgree: true,
    refused: [],
    serverErrors: [],
  })
  for (const [check, passed] of Object.entries(result.checks))
    expect({ check, passed }).toEqual({ check, passed: true })
}

/**
 * Samples, every 2 s while `outageMs` runs, whether `store` holds every point acknowledged more than
 * `lagMs` ago: the other store being down must not hold it back.
 */
async function expectCurrentDuring(ctx: ScenarioContext, store: 'postgres' | 'influx', outageMs: number) {
  const lagMs = 5_000
  const ends = performance.now() + outageMs
  let current = true
  let samples = 0
  while (performance.now() < ends) {
    await pause(Math.min(2_000, Math.max(0, ends - performance.now())))
    const required = ctx.load.acknowledgedBy(performance.now() - lagMs)
    const stored = await ctx.storedCount(store)
    samples++
    if (stored < required) {
      current = false
      ctx.notes.push(`${store} behind: ${stored} stored < ${required} acknowledged ${lagMs / 1000} s earlier`)
    }
  }
  ctx.checks[`${store} current (≤ ${lagMs / 1000} s behind) during the outage, ${samples} samples`] = current
}

/** The bound of issue 14: a killed writer's jobs are being written again within this. */
const RECOVERY_LIMIT_S = 10

/**
 * SIGKILLs a writer while its store queue has jobs in its hands, restarts it, and measures how long
 * the jobs it held took to be written again (their locks must lapse and a stalled check find them).
 */
async function killMidBatch(ctx: ScenarioContext, kind: 'postgres' | 'influx', downMs = 2_000) {
  const writer = (kind === 'postgres' ? ctx.postgresWriters : ctx.influxWriters)[0]
  if (!writer) throw new Error('no writer to kill')
  const queue = kind === 'postgres' ? 'store-postgres' : 'store-influx'
  await ctx.untilActive(queue)
  await writer.kill('SIGKILL')
  const killed = performance.now()
  const held = await ctx.heldJobs(queue)
  ctx.notes.push(`writer-${kind} SIGKILLed holding ${held.length} jobs`)
  await pause(downMs)
  await writer.restart()
  await ctx.untilStored(queue, held)
  ctx.recoverySeconds = (performance.now() - killed) / 1000
  ctx.checks[`the jobs the killed writer held written again within ${RECOVERY_LIMIT_S} s`] =
    ctx.recoverySeconds < RECOVERY_LIMIT_S
}

it('1. SIGKILL a Postgres writer mid-batch, restart it', async () => {
  const result = await runScenario({
    name: '1 SIGKILL writer-postgres',
    fault: async (ctx) => {
      await ctx.untilAcknowledged(0.4)
      await killMidBatch(ctx, 'postgres')
    },
  })
  expectNothingLost(result)
})

it('2. SIGKILL an InfluxDB writer mid-batch, restart it', async () => {
  const result = await runScenario({
    name: '2 SIGKILL writer-influx',
    fault: async (ctx) => {
      await ctx.untilAcknowledged(0.4)
      await killMidBatch(ctx, 'influx')
    },
  })
  expectNothingLost(result)
})

it('3. InfluxDB stopped for 60 s: Postgres stays current, InfluxDB catches up', async () => {
  const influxd = await startPrivateInfluxd()
  try {
    const result = await runScenario({
      name: '3 InfluxDB down 60 s',
      services: { influxUrl: influxd.url },
      loadDurationMs: 80_000,
      fault: async (ctx) => {
        await ctx.untilAcknowledged(0.1)
        await influxd.stop()
        await expectCurrentDuring(ctx, 'postgres', 60_000)
        await influxd.start()
      },
    })
    expectNothingLost(result)
  } finally {
    await influxd.dispose()
  }
})

it('4. PostgreSQL stopped for 30 s: InfluxDB stays current, PostgreSQL catches up', async () => {
  const pg = await startPrivatePostgres()
  try {
    const result = await runScenario({
      name: '4 PostgreSQL down 30 s',
      services: { postgresUrl: pg.url },
      loadDurationMs: 50_000,
      fault: async (ctx) => {
        await ctx.untilAcknowledged(0.1)
        await pg.stop()
        await expectCurrentDuring(ctx, 'influx', 30_000)
        await pg.start()
      },
    })
    expectNothingLost(result)
  } finally {
    await pg.dispose()
  }
})

it('5. SIGKILL the gateway mid-load: what got 202 is stored, what did not is retried and stored once', async () => {
  const result = await runScenario({
    name: '5 SIGKILL gateway',
    fault: async (ctx) => {
      await ctx.untilAcknowledged(0.4)
      const [gateway] = ctx.gateways
      await gateway?.kill('SIGKILL')
      await pause(2_000)
      await gateway?.restart()
    },
  })
  expectNothingLost(result)
  expect(Object.keys(result.retriedOutcomes).length).toBeGreaterThan(0) // the kill cut requests off
})

it('6. Redis (AOF, appendfsync always) SIGKILLed and restarted: nothing acknowledged lost', async () => {
  const redis = await startPrivateRedis({ appendfsync: 'always' })
  try {
    const result = await runScenario({
      name: '6 Redis SIGKILL + restart',
      services: { redisUrl: redis.url },
      fault: async (ctx) => {
        await ctx.untilAcknowledged(0.4)
        await redis.stop('SIGKILL')
        await pause(3_000)
        await redis.start()
        ctx.notes.push('redis SIGKILLed, restarted after 3 s from its append-only file')
      },
    })
    expectNothingLost(result)
  } finally {
    await redis.dispose()
  }
})

it('7. two gateways and two writers of each kind; one of each SIGKILLed and restarted', async () => {
  const result = await runScenario({
    name: '7 scale-out, kill 1 of each',
    gateways: 2,
    writersPerStore: 2,
    loadDurationMs: 40_000,
    fault: async (ctx) => {
      await ctx.untilAcknowledged(0.4)
      const victims = [ctx.gateways[0], ctx.postgresWriters[0], ctx.influxWriters[0]]
      await ctx.untilActive('store-postgres')
      await Promise.all(victims.map((app) => app?.kill('SIGKILL')))
      await pause(3_000)
      await Promise.all(victims.map((app) => app?.restart()))
    },
  })
  expectNothingLost(result)
})

it('8. a poison batch InfluxDB refuses forever: dead-lettered, the rest flows, stored once replayed after the fix', async () => {
  // Its own week (shard), where `seq` already exists as a string: InfluxDB refuses our float.
  const poisonTime = Date.UTC(2020, 0, 8)
  const poisonPoints = 10
  let poisonDevice = 0
  const result = await runScenario({
    name: '8 poison batch + replay',
    fault: async (ctx) => {
      await ctx.influx.writeLines([`telemetry,device_id=0 seq="conflict" ${poisonTime}`])
      const poison = await ctx.registerDevice('poison')
      poisonDevice = poison.id
      await ctx.untilAcknowledged(0.4)
      await ctx.load.sendExtra(poison, poisonTime, poisonPoints)
    },
    afterDrain: async (ctx) => {
      const counts = await ctx.queueCounts()
      ctx.checks['the poison job, alone, in the InfluxDB dead-letter set'] =
        counts['store-influx']?.failed === 1 && counts['store-postgres']?.failed === 0
      const [postgres, influx] = [await ctx.storedCount('postgres'), await ctx.storedCount('influx')]
      ctx.checks['everything else stored in both before the replay'] =
        postgres === ctx.load.acknowledged && influx === ctx.load.acknowledged - poisonPoints
      ctx.notes.push(
        `before replay: postgres ${postgres}, influxdb ${influx} (poison device ${poisonDevice})`,
      )

      expect(await ctx.influx.dropShardHolding(poisonTime)).toBe(1)
      const replay = spawnSync(
        'node',
        ['--import', 'tsx', 'packages/queue/src/dead-letters/dlq-replay-cli.ts', '--all'],
        {
          env: { ...process.env, ...ctx.env },
          encoding: 'utf8',
          timeout: 30_000,
        },
      )
      ctx.checks['pnpm dlq:replay --all replayed 1 job'] = replay.stdout.includes('1 job(s) replayed')
      ctx.notes.push(`replay: ${replay.stdout.trim().split('\n').at(-1)}`)
    },
  })
  expectNothingLost(result)
})

it('9. rolling restart: SIGTERM each app in turn under load; each exits 0 within its deadline, nothing lost', async () => {
  const result = await runScenario({
    name: '9 rolling SIGTERM restart',
    loadDurationMs: 60_000,
    fault: async (ctx) => {
      await ctx.untilAcknowledged(0.1)
      for (const app of [ctx.gateways[0], ctx.postgresWriters[0], ctx.influxWriters[0]]) {
        if (!app) continue
        ctx.checks[`${app.name} stopped under load`] = ctx.loadRunning()
        const started = performance.now()
        const exit = await app.kill('SIGTERM')
        const seconds = ((performance.now() - started) / 1000).toFixed(1)
        ctx.checks[`${app.name} exited 0 on SIGTERM under load`] = exit.code === 0
        ctx.notes.push(`${app.name}: SIGTERM → exit ${exit.code ?? exit.signal} in ${seconds} s`)
        await app.restart()
      }
    },
  })
  expectNothingLost(result)
})

/**
 * The longest time, from `from` (performance.now()) until the load ended, with no request
 * acknowledged: how long ingest stood still through a failover.
 */
function longestAckGapSeconds(ctx: ScenarioContext, from: number): number {
  let previous = from
  let longest = 0
  for (const { at } of ctx.load.ackTimeline) {
    if (at < from) continue
    longest = Math.max(longest, at - previous)
    previous = at
  }
  return longest / 1000
}

/**
 * Replication is asynchronous: without REDIS_MIN_REPLICAS_ACK, what a dying primary acknowledged but
 * had not yet passed on is lost (docs/redis-ha.md has the count). With it, a 202 means a replica
 * holds the batch, whichever node is promoted.
 */
const ACKED_BY_A_REPLICA = { REDIS_MIN_REPLICAS_ACK: '1', REDIS_REPLICAS_ACK_TIMEOUT_MS: '1000' }

/** What a Redis failover scenario kills: a node, and how to wait for its successor. */
interface RedisVictim {
  node: PrivateServer
  what: string
  /** Called before the kill; resolves, once called after it, with the node that took over. */
  takeover: () => Promise<PrivateServer>
}

/**
 * SIGKILLs a Redis data node of a setup of the scenario's own under load, with every batch held by a
 * replica before it is acknowledged; notes how long the takeover and the stop of acknowledgements
 * lasted, and brings the killed node back (as a replica, as an operator would).
 */
async function redisFailoverScenario(
  name: string,
  setup: { env(): Record<string, string>; dispose(): Promise<void> },
  victimOf: () => Promise<RedisVictim>,
) {
  try {
    const result = await runScenario({
      name,
      services: { redisEnv: setup.env() },
      appEnv: ACKED_BY_A_REPLICA,
      loadDurationMs: 40_000,
      fault: async (ctx) => {
        await ctx.untilAcknowledged(0.3)
        const victim = await victimOf()
        await victim.node.stop('SIGKILL')
        const killed = performance.now()
        const successor = await victim.takeover()
        const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(1)
        ctx.notes.push(
          `${victim.what} ${victim.node.port} SIGKILLed; ${successor.port} took over after ${seconds(killed)} s`,
        )
        await victim.node.start()
        await ctx.untilAcknowledged(1)
        ctx.notes.push(
          `longest time without an acknowledgement: ${longestAckGapSeconds(ctx, killed).toFixed(1)} s`,
        )
      },
    })
    expectNothingLost(result)
  } finally {
    await setup.dispose()
  }
}

it('10. Redis Sentinel: the primary SIGKILLed under load; the sentinels promote a replica, nothing acknowledged lost', async () => {
  const sentinel = await startPrivateRedisSentinel()
  await redisFailoverScenario('10 Sentinel primary SIGKILL', sentinel, async () => {
    const node = await sentinel.primary()
    return { node, what: 'primary', takeover: () => sentinel.newPrimaryAfter(node, 60_000) }
  })
})

it('11. Redis Cluster: the master holding the queues SIGKILLed under load; its replica takes over, nothing acknowledged lost', async () => {
  const cluster = await startPrivateRedisCluster()
  await redisFailoverScenario('11 Cluster master SIGKILL', cluster, async () => {
    // The master with the most keys: the one holding the queues' slot (or the most partitions).
    const masters = await cluster.masters()
    const sizes = await Promise.all(masters.map(async (m) => Number(await redisCommand(m.port, 'DBSIZE'))))
    const node = masters[sizes.indexOf(Math.max(...sizes))]
    if (!node) throw new Error('no master')
    return { node, what: 'master', takeover: await cluster.failoverOf(node) }
  })
})
