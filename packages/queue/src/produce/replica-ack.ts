import { Cluster, type Redis } from 'ioredis'
import { bullPrefix } from '../catalog.js'
import type { RedisConnection } from '../redis/connection.js'

/** REDIS_MIN_REPLICAS_ACK: acknowledge a batch only once this many replicas hold it. */
export interface ReplicaAck {
  replicas: number
  timeoutMs: number
}

/** Fewer replicas than asked confirmed the write in time: the batch is queued, but not yet safe. */
export class ReplicasNotAcknowledgedError extends Error {
  constructor(asked: number, acknowledged: number, timeoutMs: number) {
    super(`only ${acknowledged} of ${asked} Redis replicas acknowledged the batch within ${timeoutMs} ms`)
    this.name = 'ReplicasNotAcknowledgedError'
  }
}

/**
 * Waits (Redis WAIT) until `ack.replicas` replicas hold every write this connection made so far,
 * the batch just queued among them. WAIT counts the writes of the connection it is sent on, so on a
 * cluster it goes to the connection of the master that holds the slot of `queuePrefix` (a queue
 * partition's prefix, whose hash tag the flow's MULTI used), the one the MULTI went to.
 */
export async function waitForReplicas(
  connection: RedisConnection,
  queuePrefix: string,
  ack: ReplicaAck,
): Promise<void> {
  const node = connection instanceof Cluster ? await masterOfQueues(connection, queuePrefix) : connection
  const acknowledged = await node.wait(ack.replicas, ack.timeoutMs)
  if (acknowledged < ack.replicas)
    throw new ReplicasNotAcknowledgedError(ack.replicas, acknowledged, ack.timeoutMs)
}

async function masterOfQueues(cluster: Cluster, queuePrefix: string): Promise<Redis> {
  const slot = Number(await cluster.cluster('KEYSLOT', bullPrefix(queuePrefix)))
  const owner = cluster.slots[slot]?.[0]
  const node = cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner)
  if (!node) throw new Error(`Redis Cluster: no known master holds slot ${slot} (${owner ?? 'none'})`)
  return node
}
