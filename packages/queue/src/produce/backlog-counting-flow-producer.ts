import { pointsInPayload, type StoreBatchPayload } from '@iotflow/contracts'
import { type AddNodeOpts, FlowProducer, type Job, type JobNode, type QueueBaseOptions } from 'bullmq'
import type { ChainableCommander } from 'ioredis'
import { backlogKey, storeQueueNames } from '../backlog/backlog.js'
import { bullPrefix } from '../catalog.js'
import { onSharedConnection, type RedisConnection } from '../redis/connection.js'
import { SharedPayloadJob } from './shared-payload-job.js'

/**
 * A FlowProducer that adds, to the same MULTI as each store job, the HINCRBY that counts its
 * points: a job and its count reach Redis together or not at all, and the count is there before any
 * writer can take the job. No public BullMQ API does this, so it overrides the protected `addNode`
 * and `Job`: bullmq is pinned to an exact version and bullmq-contract.test.ts fails on an upgrade
 * that changes either (docs/pipeline.md, "BullMQ beyond its public API").
 */
export class BacklogCountingFlowProducer extends FlowProducer {
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
