import type { RedisConnection } from '../redis/connection.js'
import { ALERT_STREAM_GROUP } from './alert-stream-keys.js'

/**
 * Removes from a stream's consumer group the consumers that hold nothing and were not heard of for
 * `idleMs`: each evaluator start adds a name (host, pid, random), and the group would keep every
 * one. A live evaluator's blocking read touches its name every few seconds, and one removed by
 * mistake is added again by its next read; one with pending entries is left for XAUTOCLAIM to
 * empty first. Returns the names removed.
 */
export async function forgetGoneConsumers(
  connection: RedisConnection,
  key: string,
  idleMs: number,
): Promise<string[]> {
  let replies: unknown[][]
  try {
    replies = (await connection.xinfo('CONSUMERS', key, ALERT_STREAM_GROUP)) as unknown[][]
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('NOGROUP')) return []
    throw error
  }
  const gone: string[] = []
  for (const reply of replies) {
    const fields = new Map<string, unknown>()
    for (let i = 0; i + 1 < reply.length; i += 2) fields.set(String(reply[i]), reply[i + 1])
    if (Number(fields.get('pending')) === 0 && Number(fields.get('idle')) >= idleMs)
      gone.push(String(fields.get('name')))
  }
  for (const name of gone) await connection.xgroup('DELCONSUMER', key, ALERT_STREAM_GROUP, name)
  return gone
}
