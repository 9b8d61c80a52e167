import { pointsInPayload, type StoreBatchPayload } from '@iotflow/contracts'
import {
  type AddNodeOpts,
  FlowProducer,
  type Job,
  type JobNode,
  type QueueBaseOptions,
  type Worker,
} from 'bullmq'
import type { ChainableCommander } from 'ioredis'
import { bullPrefix, queueCatalog, storeQueues } from './catalog.js'
import { onSharedConnection, type RedisConnection } from './connection.js'
import { failedForGood } from './failure-isolation.js'
import { SharedPayloadJob } from './shared-payload-job.js'

/**
 * The backlog: per store queue, the points queued but not yet stored. One Redis hash, a field per
 * store queue, under the queue prefix so it shares the queues' Redis Cluster slot (and so a MULTI
 * that adds jobs can count them). Producers count a job's points in the MULTI that adds the job;
 * writers subtract them once the job is completed (after its commit) or failed for good.
 */
export const backlogKey = (queuePrefix: string) => `${bullPrefix(queuePrefix)}:backlog`

const storeQueueNames: ReadonlySet<string> = new Set(storeQueues.map((key) => queueCatalog[key].name))

/** Points per store queue name (`store-postgres`, `store-influx`). */
export type BacklogPoints = Record<string, number>

/**
 * A FlowProducer that adds, to the same MULTI as each store job, the HINCRBY that counts its
 * points: a job and its count reach Redis together or not at all, and the count is there before any
 * writer can take the job. It hooks BullMQ's `addNode` (protected: meant for subclasses), which
 * both `add` and `addBulk` go through for every job of a flow; the backlog test checks it counts.
 */
class BacklogCountingFlowProducer extends FlowProducer {
  constructor(
    options: QueueBaseOptions,
    private readonly counterKey: string,
  ) {
    super(options)
  }

  /** The store jobs of a flow share one payload object: serialized once (shared-payload-job.ts). */
  override get Job(): typeof Job {
    return SharedPayloadJob as typeof Job
  }

  protected override async addNode(options: AddNodeOpts): Promise<JobNode> {
    const added = await super.addNode(options)
    const { node, multi } = options
    if (storeQueueNames.has(node.queueName) && !node.children?.length) {
      // Our connections are ioredis, whose MULTI BullMQ only wraps: every command is there.
      const transaction = multi as unknown as ChainableCommander
      transaction.hincrby(this.counterKey, node.queueName, pointsInPayload(node.data as StoreBatchPayload))
    }
    return added
  }
}

/** The FlowProducer of the fan-out, counting every store job's points into the backlog. */
export function createBacklogCountingFlowProducer(
  connection: RedisConnection,
  queuePrefix: string,
): FlowProducer {
  return new BacklogCountingFlowProducer(
    { connection, prefix: bullPrefix(queuePrefix), ...onSharedConnection },
    backlogKey(queuePrefix),
  )
}

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
  const queueKey = (state: string) => `${bullPrefix(queuePrefix)}:${queueName}:${state}`
  const release = (redis as unknown as Record<string, ReleaseCommand>)[SCRIPT_NAME] as ReleaseCommand
  return release.call(
    redis,
    backlogKey(queuePrefix),
    queueKey('wait'),
    queueKey('paused'),
    queueKey('active'),
    queueKey('delayed'),
    queueKey('prioritized'),
    queueName,
    points,
  )
}

export interface BacklogReleaser {
  /** Subtracts what was stored since the last flush, and reconciles. */
  flush(): Promise<void>
  /** Stops the timer and flushes once more. */
  close(): Promise<void>
}

/** Completed jobs' points are subtracted in one script call per this interval, not one per job. */
const RELEASE_INTERVAL_MS = 100
/** Even with nothing to subtract, the counter is reconciled this often. */
const RECONCILE_INTERVAL_MS = 1_000

/**
 * The writer's side of the backlog: every job the worker completes (after its batch committed) or
 * fails for good (it leaves for the dead-letter set) gives its points back. Points given back are
 * summed and subtracted every 100 ms; the same script reconciles the counter every second.
 */
export function releaseBacklogOnCompletion(
  worker: Worker<StoreBatchPayload>,
  options: {
    connection: RedisConnection
    queuePrefix: string
    logger: { warn(obj: object, msg?: string): void }
  },
): BacklogReleaser {
  const { connection, queuePrefix, logger } = options
  const queueName = worker.name
  let pending = 0
  let lastRun = 0
  let running: Promise<void> | undefined

  // What each job counted when it was queued, read as the worker takes it: a job partly refused
  // is cut down to its refused batches before it fails (batching-worker.ts), yet gives all back.
  const counted = new WeakMap<Job<StoreBatchPayload>, number>()
  const pointsOf = (job: Job<StoreBatchPayload>) => counted.get(job) ?? pointsInPayload(job.data)
  worker.on('active', (job: Job<StoreBatchPayload>) => {
    counted.set(job, pointsInPayload(job.data))
  })
  worker.on('completed', (job: Job<StoreBatchPayload>) => {
    pending += pointsOf(job)
  })
  worker.on('failed', (job: Job<StoreBatchPayload> | undefined, error: Error) => {
    if (!job || error.name === 'RateLimitError') return
    if (failedForGood(job, error)) pending += pointsOf(job)
  })

  function flush(): Promise<void> {
    running ??= (async () => {
      const points = pending
      pending = 0
      lastRun = Date.now()
      try {
        await releaseBacklog(connection, queuePrefix, queueName, points)
      } catch (error) {
        pending += points // subtracted at the next flush instead
        logger.warn({ queue: queueName, err: (error as Error).message }, 'could not update the backlog')
      }
    })().finally(() => {
      running = undefined
    })
    return running
  }

  const timer = setInterval(() => {
    if (pending > 0 || Date.now() - lastRun >= RECONCILE_INTERVAL_MS) void flush()
  }, RELEASE_INTERVAL_MS)

  return {
    flush,
    async close() {
      clearInterval(timer)
      await running
      if (pending > 0) await flush()
    },
  }
}
