import { queueCatalog } from '../catalog.js'
import { allPartitions, partitionPrefix, type QueueLayout } from '../partitions.js'
import type { RedisConnection } from '../redis/connection.js'
import { type JobCounts, type PartitionDepth, summedOverPartitions } from '../status/queue-depths.js'
import { ALERT_STREAM_GROUP, alertDeadLetterKey, alertStreamKey } from './alert-stream-keys.js'

/** XPENDING's summary count; 0 while the stream or its group does not exist yet. */
async function pendingOf(connection: RedisConnection, key: string): Promise<number> {
  try {
    const [count] = (await connection.xpending(key, ALERT_STREAM_GROUP)) as [number, ...unknown[]]
    return Number(count)
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('NOGROUP')) return 0
    throw error
  }
}

/**
 * The alert streams' depths, in the shape of a queue's (health, metrics, the bench's drain): an entry
 * is deleted once judged, so the stream's length is what is not yet judged; of it, the entries an
 * evaluator holds (the group's pending ones) are `active`, the rest `waiting`; the dead letters are
 * `failed`. Named `alert-evaluate`, as the queue it replaces.
 */
export function createAlertStreamDepths(
  connection: RedisConnection,
  layout: QueueLayout,
  partitions: readonly number[] = allPartitions(layout),
) {
  const { name } = queueCatalog.alertEvaluate
  async function readByPartition(): Promise<PartitionDepth[]> {
    return Promise.all(
      partitions.map(async (partition) => {
        const queuePrefix = partitionPrefix(layout, partition)
        const [length, pending, dead] = await Promise.all([
          connection.xlen(alertStreamKey(queuePrefix)),
          pendingOf(connection, alertStreamKey(queuePrefix)),
          connection.xlen(alertDeadLetterKey(queuePrefix)),
        ])
        const counts: JobCounts = {
          waiting: Math.max(0, length - pending),
          active: pending,
          delayed: 0,
          failed: dead,
          prioritized: 0,
        }
        return { partition, queue: name, counts }
      }),
    )
  }
  return {
    /** The streams' entries per state, summed over the partitions. */
    read: async () => summedOverPartitions(await readByPartition()),
    readByPartition,
  }
}

export type AlertStreamDepths = ReturnType<typeof createAlertStreamDepths>
