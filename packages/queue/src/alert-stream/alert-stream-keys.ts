import { bullPrefix } from '../catalog.js'
import type { RedisConnection } from '../redis/connection.js'

/**
 * The alert evaluator's hand-over (docs/alerts.md, "The fan-out to the evaluator"): one Redis stream
 * per queue partition, under the partition's hash tag so that the producers' MULTI, which adds an
 * entry beside the store jobs, stays in one Redis Cluster slot. Entries carry the store payload's
 * JSON in the field `data`; the evaluators read them as one consumer group and delete each entry
 * once its evaluation committed, so the stream holds only what is not yet judged.
 */
export const alertStreamKey = (queuePrefix: string) => `${bullPrefix(queuePrefix)}:alert-stream`

/** Entries that failed for good (permanent, or out of attempts): a stream of their own, replayable. */
export const alertDeadLetterKey = (queuePrefix: string) => `${bullPrefix(queuePrefix)}:alert-stream:dead`

/** The consumer group every evaluator reads in. */
export const ALERT_STREAM_GROUP = 'alert-evaluators'

/** The field of an entry that holds the payload. */
export const ALERT_ENTRY_DATA = 'data'

/**
 * Creates the consumer group unless it exists. From id 0, so entries added before the first evaluator
 * ever started (producers fan out once a rule exists) are read too; MKSTREAM, so it can precede them.
 */
export async function ensureAlertStreamGroup(connection: RedisConnection, key: string): Promise<void> {
  try {
    await connection.xgroup('CREATE', key, ALERT_STREAM_GROUP, '0', 'MKSTREAM')
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('BUSYGROUP')) throw error
  }
}

/** A stream entry as ioredis returns it: its id, then its fields and values in turn. */
export type RawStreamEntry = [id: string, fields: string[]]

/** The value of `field` in an entry's fields; undefined when absent. */
export function fieldOf(fields: readonly string[], field: string): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === field) return fields[i + 1]
  return undefined
}
