import type { AddNodeOpts, FlowJob, JobNode } from 'bullmq'
import type { ChainableCommander } from 'ioredis'
import { alertStreamKey } from '../alert-stream/alert-stream-keys.js'
import { backlogKey } from '../backlog/backlog.js'
import { bullPrefix } from '../catalog.js'
import { onSharedConnection, type RedisConnection } from '../redis/connection.js'
import { BacklogCountingFlowProducer } from './backlog-counting-flow-producer.js'
import { addTakesToMulti, type MultiTake } from './multi-take.js'
import { defineUnconditionalTake } from './token-buckets.js'

/**
 * The backlog-counting FlowProducer that also takes, in the MULTI of a flow, the tokens of the
 * batches it carries that were admitted without a take of their own (multi-take.ts): the tokens are
 * taken if and only if the batch is queued. Like the backlog count, through the protected `addNode`
 * (docs/pipeline.md, "BullMQ beyond its public API").
 */
class TokenTakingFlowProducer extends BacklogCountingFlowProducer {
  /** The takes of a flow about to be added, by its root node. */
  private readonly takesOf = new WeakMap<FlowJob, readonly MultiTake[]>()

  constructor(
    private readonly redis: RedisConnection,
    queuePrefix: string,
  ) {
    super(
      { connection: redis, prefix: bullPrefix(queuePrefix), ...onSharedConnection },
      backlogKey(queuePrefix),
      alertStreamKey(queuePrefix),
    )
    // Defined before any MULTI is made from the connection: ioredis copies its scripts into each.
    defineUnconditionalTake(redis)
  }

  /**
   * Adds the flow (with its alert stream entry when `withAlertEntry`) in one MULTI with the takes,
   * after the flow's own commands; settles every take.
   */
  async addTaking(flow: FlowJob, takes: readonly MultiTake[], withAlertEntry: boolean): Promise<void> {
    if (takes.length > 0) this.takesOf.set(flow, takes)
    try {
      if (withAlertEntry) await this.addWithAlertEntry(flow)
      else await this.add(flow)
    } finally {
      this.takesOf.delete(flow)
      // Takes never put in a MULTI (BullMQ failed before it): released. A settled take ignores it.
      for (const take of takes) take.settle(false)
    }
  }

  protected override async addNode(options: AddNodeOpts): Promise<JobNode> {
    const added = await super.addNode(options)
    const takes = this.takesOf.get(options.node)
    if (takes) {
      this.takesOf.delete(options.node)
      // After the flow's own nodes: BullMQ reads the first answers of the EXEC as its job ids.
      addTakesToMulti(this.redis, options.multi as unknown as ChainableCommander, takes)
    }
    return added
  }
}

/** The FlowProducer of the fan-out: counts every store job's points, takes admitted batches' tokens. */
export function createTokenTakingFlowProducer(connection: RedisConnection, queuePrefix: string) {
  return new TokenTakingFlowProducer(connection, queuePrefix)
}
