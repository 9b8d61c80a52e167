import { pointsInPayload, type StoreBatchPayload } from '@iotflow/contracts'
import {
  type AddNodeOpts,
  type FlowJob,
  FlowProducer,
  type Job,
  type JobNode,
  type QueueBaseOptions,
} from 'bullmq'
import type { ChainableCommander } from 'ioredis'
import { ALERT_ENTRY_DATA } from '../alert-stream/alert-stream-keys.js'
import { storeQueueNames } from '../backlog/backlog.js'
import { SharedPayloadJob, serializedOnce } from './shared-payload-job.js'

/**
 * A FlowProducer that adds, to the same MULTI as each store job, the HINCRBY that counts its
 * points: a job and its count reach Redis together or not at all, and the count is there before any
 * writer can take the job. A flow added with `addWithAlertEntry` also gets, in that MULTI, the XADD
 * of its payload to the partition's alert stream (alert-stream-keys.ts). No public BullMQ API does
 * this, so it overrides the protected `addNode` and `Job`: bullmq is pinned to an exact version and
 * bullmq-contract.test.ts fails on an upgrade that changes either (docs/pipeline.md, "BullMQ beyond
 * its public API").
 */
export class BacklogCountingFlowProducer extends FlowProducer {
  /** The flows being added whose payload also goes to the alert stream. */
  private readonly withAlertEntry = new WeakSet<FlowJob>()

  constructor(
    options: QueueBaseOptions,
    private readonly counterKey: string,
    private readonly alertStream: string,
  ) {
    super(options)
  }

  /** Adds a flow and, in the same MULTI, its store payload (its first child's data) to the alert stream. */
  async addWithAlertEntry(flow: FlowJob): Promise<JobNode> {
    this.withAlertEntry.add(flow)
    try {
      return await this.add(flow)
    } finally {
      this.withAlertEntry.delete(flow)
    }
  }

  /** The store jobs of a flow share one payload object: serialized once (shared-payload-job.ts). */
  override get Job(): typeof Job {
    return SharedPayloadJob as typeof Job
  }

  protected override async addNode(options: AddNodeOpts): Promise<JobNode> {
    const added = await super.addNode(options)
    const { node, multi } = options
    // Our connections are ioredis, whose MULTI BullMQ only wraps: every command is there.
    const transaction = multi as unknown as ChainableCommander
    if (storeQueueNames.has(node.queueName) && !node.children?.length) {
      transaction.hincrby(this.counterKey, node.queueName, pointsInPayload(node.data as StoreBatchPayload))
    }
    const payload = node.children?.[0]?.data as StoreBatchPayload | undefined
    if (payload && this.withAlertEntry.has(node)) {
      // After the children: their jobs serialized the payload already, and the entry reuses the text.
      transaction.xadd(this.alertStream, '*', ALERT_ENTRY_DATA, serializedOnce(payload))
    }
    return added
  }
}
