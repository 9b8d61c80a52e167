import { QueueKeys } from 'bullmq'
import { bullPrefix, queueCatalog, storeQueues } from '../catalog.js'
import type { RedisConnection } from '../redis/connection.js'

/**
 * The backlog: per store queue, the points queued but not yet stored. One Redis hash, a field per
 * store queue, under the queue prefix so it shares the queues' Redis Cluster slot (and so a MULTI
 * that adds jobs can count them). Producers count a job's points in the MULTI that adds the job;
 * writers subtract them once the job is completed (after its commit) or failed for good.
 */
export const backlogKey = (queuePrefix: string) => `${bullPrefix(queuePrefix)}:backlog`

export const storeQueueNames: ReadonlySet<string> = new Set(storeQueues.map((key) => queueCatalog[key].name))

/** Points per store queue name (`store-postgres`, `store-influx`). */
export type BacklogPoints = Record<string, number>

/** Reads every store queue's backlog in one round trip (a counter below zero reads as zero). */
export async function readBacklog(redis: RedisConnection, queuePrefix: string): Promise<BacklogPoints> {
  const names = [...storeQueueNames]
  const values = await redis.hmget(backlogKey(queuePrefix), ...names)
  return Object.fromEntries(names.map((name, i) => [name, Math.max(0, Number(values[i] ?? 0) || 0)]))
}

/**
 * Subtracts points from one queue's counter, never below zero, then reconciles it: a queue that
 * holds no waiting, paused, active, delayed or prioritized job has no backlog, whatever the
 * counter says. That repairs the drift left by a process that died between its two steps (a
 * producer cannot: it counts in the enqueue's MULTI; a writer can, between completing a job and
 * subtracting its points). One script, so the check and the reset are atomic with the enqueues.
 */
const RELEASE_AND_RECONCILE = `
local value = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') - tonumber(ARGV[2])
if value < 0 then value = 0 end
if value > 0 then
  local jobs = redis.call('LLEN', KEYS[2]) + redis.call('LLEN', KEYS[3]) + redis.call('LLEN', KEYS[4])
    + redis.call('ZCARD', KEYS[5]) + redis.call('ZCARD', KEYS[6])
  if jobs == 0 then value = 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], value)
return value
`
const SCRIPT_NAME = 'iotflowBacklogRelease'
/**
 * The keys of the states a queued job is in until a worker is done with it, in the script's order.
 * Their names come from BullMQ's public QueueKeys; that wait, paused and active are lists and
 * delayed and prioritized sorted sets is BullMQ's internal layout, checked by bullmq-contract.test.ts.
 */
export const jobStateKeys = ['wait', 'paused', 'active', 'delayed', 'prioritized'] as const

type ReleaseCommand = (...args: (string | number)[]) => Promise<number>

/**
 * Subtracts `points` from the backlog of `queueName` (0 only reconciles); resolves with what remains.
 */
export function releaseBacklog(
  redis: RedisConnection,
  queuePrefix: string,
  queueName: string,
  points: number,
): Promise<number> {
  if (!(SCRIPT_NAME in redis))
    redis.defineCommand(SCRIPT_NAME, { numberOfKeys: 6, lua: RELEASE_AND_RECONCILE })
  const keys = new QueueKeys(bullPrefix(queuePrefix)).getKeys(queueName)
  const release = (redis as unknown as Record<string, ReleaseCommand>)[SCRIPT_NAME] as ReleaseCommand
  return release.call(
    redis,
    backlogKey(queuePrefix),
    ...jobStateKeys.map((state) => keys[state] as string),
    queueName,
    points,
  )
}
