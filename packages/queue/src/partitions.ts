/**
 * Where the device-batch queues are: QUEUE_PREFIX split into QUEUE_PARTITIONS partitions. Partition k
 * of N > 1 keeps its queues (parent, both store queues), its alert stream and its backlog counter under
 * the hash tag `{<prefix>:p<k>}`, so a flow stays in one Redis Cluster slot while the partitions
 * spread over the cluster's masters. N = 1 is the layout before partitions: `{<prefix>}`, so an
 * upgrade finds the jobs already queued. A device's token bucket lives under its partition's tag too
 * (the MULTI queueing its batch takes from it: multi-take.ts). Everything else (device events,
 * registration buckets, alert deliveries, the writers' hold) stays under `{<prefix>}` whatever N.
 */
export interface QueueLayout {
  /** QUEUE_PREFIX. */
  prefix: string
  /** QUEUE_PARTITIONS (at least 1). */
  partitions: number
}

/** The variables a layout is read from (the `redisEnv` fragment). */
export interface QueueLayoutEnv {
  QUEUE_PREFIX: string
  QUEUE_PARTITIONS?: number | undefined
}

export const queueLayout = (prefix: string, partitions = 1): QueueLayout => {
  if (!Number.isInteger(partitions) || partitions < 1)
    throw new RangeError(`queue partitions must be a whole number of at least 1, got ${partitions}`)
  return { prefix, partitions }
}

export const queueLayoutOf = (config: QueueLayoutEnv): QueueLayout =>
  queueLayout(config.QUEUE_PREFIX, config.QUEUE_PARTITIONS ?? 1)

/** Every partition's number, 0 to N-1. */
export const allPartitions = (layout: QueueLayout): number[] =>
  Array.from({ length: layout.partitions }, (_, k) => k)

/**
 * The queue prefix of partition k: what the per-queue code (workers, backlog counter, replica WAIT)
 * takes as its `queuePrefix`, and whose `bullPrefix` is the partition's hash tag.
 */
export function partitionPrefix(layout: QueueLayout, partition: number): string {
  if (!Number.isInteger(partition) || partition < 0 || partition >= layout.partitions)
    throw new RangeError(`partition ${partition} does not exist: QUEUE_PARTITIONS is ${layout.partitions}`)
  return layout.partitions === 1 ? layout.prefix : `${layout.prefix}:p${partition}`
}

/**
 * The partition a device's batches always go to: FNV-1a (32 bits) of its id in decimal, mod N. A
 * hash rather than the id itself, so that ids handed out in steps (every tenth device of one
 * customer, say) still spread; fixed here, since moving a device between partitions would let two of
 * its batches be written out of order.
 */
export function partitionOfDevice(layout: QueueLayout, deviceId: number): number {
  if (layout.partitions === 1) return 0
  let hash = 0x811c9dc5
  const text = String(deviceId)
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash % layout.partitions
}

/**
 * A queue's name or a job id, qualified by its partition where several exist (`p3/42`): a job id is
 * one partition queue's, and the same id names another job in another partition. With one
 * partition, the name or id as it is, as before partitions.
 */
export const qualifiedByPartition = (layout: QueueLayout, partition: number, text: string): string =>
  layout.partitions === 1 ? text : `p${partition}/${text}`

/** The partition and the name or id of `qualifiedByPartition`; undefined when it names none of the layout. */
export function unqualified(
  layout: QueueLayout,
  qualified: string,
): { partition: number; text: string } | undefined {
  if (layout.partitions === 1) return { partition: 0, text: qualified }
  const match = /^p(\d+)\/(.+)$/.exec(qualified)
  const partition = Number(match?.[1])
  if (!match || partition >= layout.partitions) return undefined
  return { partition, text: match[2] as string }
}
