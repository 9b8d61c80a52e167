import type { RedisConnection } from '../redis/connection.js'
import {
  ALERT_ENTRY_DATA,
  ALERT_STREAM_GROUP,
  alertDeadLetterKey,
  alertStreamKey,
  fieldOf,
  type RawStreamEntry,
} from './alert-stream-keys.js'

/** An alert-stream entry that failed for good, as its dead-letter stream keeps it. */
export interface AlertDeadLetterEntry {
  /** The dead letter's own id (in the dead-letter stream): what a replay names. */
  id: string
  /** The payload's JSON: the whole entry's, or only its refused device batches. */
  data: string
  reason: string
  attemptsMade: number
  failedAt: number
}

/** Throws the first error of a MULTI's replies: ioredis resolves EXEC even when a command failed. */
function throwOnError(results: [Error | null, unknown][] | null): void {
  if (!results) throw new Error('the transaction was discarded')
  for (const [error] of results) if (error) throw error
}

/**
 * Moves an entry of a partition's alert stream to its dead letters with `data` (the part of it that
 * failed) and why, in one MULTI with its XACK and XDEL: it is in the stream or in the dead letters,
 * never in neither.
 */
export async function moveToAlertDeadLetters(
  connection: RedisConnection,
  queuePrefix: string,
  entry: { id: string; data: string; reason: string; attemptsMade: number },
): Promise<void> {
  const stream = alertStreamKey(queuePrefix)
  const results = await connection
    .multi()
    .xadd(
      alertDeadLetterKey(queuePrefix),
      '*',
      ALERT_ENTRY_DATA,
      entry.data,
      'reason',
      entry.reason,
      'attempts',
      String(entry.attemptsMade),
      'failed_at',
      String(Date.now()),
      'entry',
      entry.id,
    )
    .xack(stream, ALERT_STREAM_GROUP, entry.id)
    .xdel(stream, entry.id)
    .exec()
  throwOnError(results)
}

const PAGE = 500

/** A partition's alert dead letters, oldest first. */
export async function listAlertDeadLetters(
  connection: RedisConnection,
  queuePrefix: string,
): Promise<AlertDeadLetterEntry[]> {
  const key = alertDeadLetterKey(queuePrefix)
  const letters: AlertDeadLetterEntry[] = []
  for (let start = '-'; ; ) {
    const page = (await connection.xrange(key, start, '+', 'COUNT', PAGE)) as RawStreamEntry[]
    for (const [id, fields] of page) {
      letters.push({
        id,
        data: fieldOf(fields, ALERT_ENTRY_DATA) ?? '',
        reason: fieldOf(fields, 'reason') ?? '',
        attemptsMade: Number(fieldOf(fields, 'attempts') ?? 0),
        failedAt: Number(fieldOf(fields, 'failed_at') ?? 0),
      })
    }
    if (page.length < PAGE) return letters
    start = `(${(page[page.length - 1] as RawStreamEntry)[0]}`
  }
}

/**
 * Puts dead letters back into the partition's alert stream, as new entries (so with a full retry
 * budget), each in one MULTI with its removal from the dead letters. Returns the ids replayed; ids
 * not among the dead letters are left out.
 */
export async function replayAlertDeadLetters(
  connection: RedisConnection,
  queuePrefix: string,
  ids?: readonly string[],
): Promise<string[]> {
  const wanted = ids && new Set(ids)
  const replayed: string[] = []
  for (const letter of await listAlertDeadLetters(connection, queuePrefix)) {
    if (wanted && !wanted.has(letter.id)) continue
    const results = await connection
      .multi()
      .xadd(alertStreamKey(queuePrefix), '*', ALERT_ENTRY_DATA, letter.data)
      .xdel(alertDeadLetterKey(queuePrefix), letter.id)
      .exec()
    throwOnError(results)
    replayed.push(letter.id)
  }
  return replayed
}
