import { QueueKeys } from 'bullmq'
import { bullPrefix, queueCatalog, storeQueues } from '../catalog.js'
import { allPartitions, partitionPrefix, type QueueLayout } from '../partitions.js'
import type { RedisConnection } from '../redis/connection.js'

/**
 * The backlog: per store queue, the points queued but not yet stored. One Redis hash per queue
 * partition, a field per store queue, under the partition's prefix so it shares its queues' Redis
 * Cluster slot (and so a MULTI that adds jobs can count them). Producers count a job's points in the
 * MULTI that adds the job; writers subtract them once the job is completed (after its commit) or
 * failed for good. `queuePrefix` is a partition's (partitionPrefix).
 */
export const backlogKey = (queuePrefix: string) => `${bullPrefix(queuePrefix)}:backlog`

export const storeQueueNames: ReadonlySet<string> = new Set(storeQueues.map((key) => queueCatalog[key].name))

/** Points per store queue name (`store-postgres`, `store-influx`). */
export type BacklogPoints = Record<string, number>

/** Each partition's backlog per store queue, by partition number (a counter below zero reads as zero). */
export function readBacklogByPartition(
  redis: RedisConnection,
  layout: QueueLayout,
): Promise<BacklogPoints[]> {
  const names = [...storeQueueNames]
  return Promise.all(
    allPartitions(layout).map(async (partition) => {
      const values = await redis.hmget(backlogKey(partitionPrefix(layout, partition)), ...names)
      return Object.fromEntries(names.map((name, i) => [name, Math.max(0, Number(values[i] ?? 0) || 0)]))
    }),
  )
}

/** Every store queue's backlog over all partitions (one round trip per partition, at once). */
export async function readBacklog(redis: RedisConnection, layout: QueueLayout): Promise<BacklogPoints> {
  return sumBacklogs(await readBacklogByPartition(redis, layout))
}

/** The partitions' backlogs added up, per store queue they name. */
export function sumBacklogs(partitions: readonly BacklogPoints[]): BacklogPoints {
  const total: BacklogPoints = {}
  for (const points of partitions)
    for (const [name, value] of Object.entries(points)) total[name] = (total[name] ?? 0) + value
  return total
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
 * Subtracts `points` from the backlog of `queueName` in the partition of `queuePrefix` (0 only
 * reconciles); resolves with what remains.
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
