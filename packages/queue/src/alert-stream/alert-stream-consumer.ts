import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { type DeviceColumns, pointsInPayload, type StoreBatchPayload } from '@iotflow/contracts'
import type { Logger } from '@iotflow/runtime'
import { withDeadline } from '@iotflow/runtime'
import { Cluster } from 'ioredis'
import { queueCatalog } from '../catalog.js'
import { asError } from '../consume/as-error.js'
import { type FailureKind, RefusedBatchesError, UnstoredBatchesError } from '../consume/failure-isolation.js'
import { createIsolatingGatherer } from '../consume/isolating-gatherer.js'
import { payloadOf } from '../job-payloads.js'
import { type RedisConnection, warnOnRedisErrors } from '../redis/connection.js'
import { moveToAlertDeadLetters } from './alert-dead-letters.js'
import {
  ALERT_ENTRY_DATA,
  ALERT_STREAM_GROUP,
  alertStreamKey,
  ensureAlertStreamGroup,
  fieldOf,
  type RawStreamEntry,
} from './alert-stream-keys.js'
import { forgetGoneConsumers } from './gone-consumers.js'

export interface AlertStreamConsumerOptions {
  /** Acknowledgements, claims and dead letters; the blocking reads get connections of their own. */
  connection: RedisConnection
  /** The queue prefix of each partition consumed (partitionPrefix). */
  queuePrefixes: readonly string[]
  maxBatchPoints: number
  lingerMs: number
  /** Evaluations running at once (1 keeps the stream's order). */
  maxInFlightWrites: number
  /**
   * An entry a consumer took and has not acknowledged for this long is taken over by another
   * (XAUTOCLAIM): its consumer died. A live consumer resets the idle time of what it holds well before.
   */
  minIdleMs: number
  /** How often entries idle for `minIdleMs` are looked for. */
  claimIntervalMs: number
  /** On close, how long entries already taken may still be evaluated before the rest are left. */
  shutdownDrainMs: number
  /** Tries of an entry that fails transiently before it goes to the dead letters. */
  attempts: number
  /** Delay before the first retry; doubled for each further one (then jittered). */
  backoffMs: number
  /** Longest wait of one blocking read (ms). */
  blockMs?: number
  /** A consumer of the group that holds nothing and was not heard of for this long is removed (1 h). */
  goneConsumerIdleMs?: number
  /** Judges the device batches of many entries at once; resolves once its transaction committed. */
  writeBatch: (batches: DeviceColumns[]) => Promise<void>
  classify: (error: Error) => FailureKind
  logger: Pick<Logger, 'info' | 'warn' | 'error'>
}

export interface AlertStreamConsumer {
  close(): Promise<void>
}

/** An entry taken from a stream and not yet acknowledged or dead-lettered. */
interface HeldEntry {
  /** `<stream key> <entry id>`: unique over the partitions. */
  ref: string
  key: string
  queuePrefix: string
  id: string
  payload: StoreBatchPayload
  /** Counted in the held points from its taking to its release. */
  points: number
  attemptsMade: number
  retry?: NodeJS.Timeout
}

const UNAVAILABLE_PAUSE_MIN_MS = 500
const UNAVAILABLE_PAUSE_MAX_MS = 15_000
const MAX_READ_COUNT = 1_000
const CLAIM_COUNT = 100
// An entry whose evaluator died is taken over by another up to this many times (as a writer's job
// may stall 5 times); judging it again is harmless, but one that kills every evaluator is set aside.
const MAX_DELIVERIES = 6
const { name } = queueCatalog.alertEvaluate

/** An entry left to the others at shutdown, unjudged: it stays pending, and another consumer claims it. */
class LeftAtShutdownError extends Error {
  override name = 'LeftAtShutdownError'
}

/**
 * The alert evaluator's side of the alert streams: reads many entries per XREADGROUP (COUNT, BLOCK)
 * in the consumer group, gathers them into evaluations bounded by points (job-gatherer.ts, as the
 * store writers do), and acknowledges and deletes them (XACK and XDEL in one MULTI per stream) only
 * once the evaluation's transaction committed. Failures follow the writers' policy
 * (failure-isolation.ts): an unavailable store pauses reading and retries without using an attempt;
 * a transient failure retries with backoff up to `attempts`; a permanent one, or the last attempt,
 * moves the entry (or its failing device batches) to the partition's dead letters. What a consumer
 * holds has its idle time reset every third of `minIdleMs` (XCLAIM JUSTID to itself); a killed
 * consumer's entries outlive it, and another takes them over with XAUTOCLAIM: judging a batch twice
 * changes nothing (docs/alerts.md).
 */
export async function createAlertStreamConsumer(
  options: AlertStreamConsumerOptions,
): Promise<AlertStreamConsumer> {
  const { connection, logger } = options
  if (options.queuePrefixes.length === 0) throw new Error(`no queue partition to consume for ${name}`)
  const consumer = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 10)}`
  const streams = options.queuePrefixes.map((queuePrefix) => ({
    queuePrefix,
    key: alertStreamKey(queuePrefix),
  }))
  for (const { key } of streams) await ensureAlertStreamGroup(connection, key)

  const held = new Map<string, HeldEntry>()
  let heldPoints = 0
  let averagePoints: number | undefined
  // Enough for the evaluations in flight plus the one gathering, as a writer holds jobs.
  const targetPoints = options.maxBatchPoints * (options.maxInFlightWrites + 1)
  let pausedUntil = 0
  let unavailablePauseMs = UNAVAILABLE_PAUSE_MIN_MS
  let closing = false
  let wakeReaders: (() => void)[] = []
  const wake = () => {
    const waiting = wakeReaders
    wakeReaders = []
    for (const resolve of waiting) resolve()
  }

  const gatherer = createIsolatingGatherer(name, options, () => {
    unavailablePauseMs = UNAVAILABLE_PAUSE_MIN_MS
  })

  function release(entry: HeldEntry): void {
    if (!held.delete(entry.ref)) return
    clearTimeout(entry.retry)
    heldPoints -= entry.points
    wake()
  }

  // Acknowledgements of committed entries, per stream, sent together once per turn of the event loop.
  let acks = new Map<string, HeldEntry[]>()
  let flushing: Promise<void> = Promise.resolve()
  let flushScheduled = false
  function acknowledge(entry: HeldEntry): void {
    const list = acks.get(entry.key)
    if (list) list.push(entry)
    else acks.set(entry.key, [entry])
    if (flushScheduled) return
    flushScheduled = true
    setImmediate(() => {
      flushScheduled = false
      flushing = flushing.then(flushAcks)
    })
  }
  async function flushAcks(): Promise<void> {
    const batch = acks
    acks = new Map()
    await Promise.all(
      [...batch].map(async ([key, entries]) => {
        const ids = entries.map((entry) => entry.id)
        try {
          const results = await connection
            .multi()
            .xack(key, ALERT_STREAM_GROUP, ...ids)
            .xdel(key, ...ids)
            .exec()
          const failed = results?.find(([error]) => error)?.[0]
          if (!results || failed) throw failed ?? new Error('the transaction was discarded')
          for (const entry of entries) release(entry)
        } catch (error) {
          // Judged and committed, not yet acknowledged: tried again (left at shutdown); a redelivery
          // would change nothing.
          logger.warn({ queue: name, err: asError(error).message }, 'acknowledging entries failed')
          if (closing) return
          await sleep(1_000)
          for (const entry of entries) acknowledge(entry)
        }
      }),
    )
  }

  /** Moves an entry (with the part of it that failed) to the dead letters, retrying while Redis fails. */
  async function deadLetter(entry: HeldEntry, payload: StoreBatchPayload, reason: string): Promise<void> {
    try {
      await moveToAlertDeadLetters(connection, entry.queuePrefix, {
        id: entry.id,
        data: JSON.stringify(payload),
        reason,
        attemptsMade: entry.attemptsMade,
      })
      logger.error(
        { queue: name, entry: entry.id, batch: payload.batch_id, attempt: entry.attemptsMade, err: reason },
        'entry failed for good; kept in the dead letters',
      )
      release(entry)
    } catch (error) {
      logger.warn(
        { queue: name, entry: entry.id, err: asError(error).message },
        'dead-lettering failed; retrying',
      )
      if (!closing) entry.retry = setTimeout(() => void deadLetter(entry, payload, reason), 1_000)
    }
  }

  function submit(entry: HeldEntry): void {
    entry.retry = undefined
    if (closing) {
      release(entry)
      return
    }
    gatherer.add({ id: entry.ref, points: pointsInPayload(entry.payload), value: entry.payload }).then(
      () => acknowledge(entry),
      (error) => onFailure(entry, asError(error)),
    )
  }

  function retryLater(entry: HeldEntry, error: Error): void {
    entry.attemptsMade++
    if (entry.attemptsMade >= options.attempts) {
      void deadLetter(entry, entry.payload, error.message)
      return
    }
    const delay = options.backoffMs * 2 ** (entry.attemptsMade - 1) * (1 - 0.5 * Math.random())
    logger.warn(
      {
        queue: name,
        entry: entry.id,
        batch: entry.payload.batch_id,
        attempt: entry.attemptsMade,
        err: error.message,
      },
      'entry failed; will retry',
    )
    entry.retry = setTimeout(() => submit(entry), delay)
  }

  function onFailure(entry: HeldEntry, error: Error): void {
    if (error instanceof LeftAtShutdownError) {
      release(entry)
      return
    }
    if (error instanceof RefusedBatchesError) {
      // The rest of the entry is judged: only the refused device batches go to the dead letters.
      void deadLetter(entry, { ...entry.payload, batches: error.refused }, error.message)
      return
    }
    if (error instanceof UnstoredBatchesError) {
      entry.payload = { ...entry.payload, batches: error.unstored }
      retryLater(entry, error.cause)
      return
    }
    const kind = options.classify(error)
    if (kind === 'permanent') {
      void deadLetter(entry, entry.payload, error.message)
      return
    }
    if (kind === 'transient') {
      retryLater(entry, error)
      return
    }
    // Unavailable: reading pauses (longer each time, up to 15 s) and the entry waits it out unspent.
    const now = Date.now()
    if (pausedUntil <= now) {
      pausedUntil = now + unavailablePauseMs
      unavailablePauseMs = Math.min(unavailablePauseMs * 2, UNAVAILABLE_PAUSE_MAX_MS)
      logger.warn({ queue: name, err: error.message }, 'store unavailable; pausing the alert stream')
    }
    entry.retry = setTimeout(() => submit(entry), pausedUntil - now)
  }

  /**
   * Moves an entry taken but never judged to the dead letters as it came, held (with no points)
   * until that is done; left pending if it fails, to be taken over again later.
   */
  function deadLetterAsRead(
    stream: (typeof streams)[number],
    id: string,
    data: string,
    reason: string,
  ): void {
    const ref = `${stream.key} ${id}`
    const entry: HeldEntry = {
      ref,
      ...stream,
      id,
      payload: { batch_id: '', batches: [] },
      points: 0,
      attemptsMade: 0,
    }
    held.set(ref, entry)
    logger.error({ queue: name, entry: id, err: reason }, 'entry kept in the dead letters')
    moveToAlertDeadLetters(connection, stream.queuePrefix, { id, data, reason, attemptsMade: 0 }).then(
      () => release(entry),
      () => release(entry),
    )
  }

  /** Takes an entry read or claimed: held, then judged, or dead-lettered at once if unreadable. */
  function take(stream: (typeof streams)[number], [id, fields]: RawStreamEntry): void {
    const ref = `${stream.key} ${id}`
    if (held.has(ref)) return // claimed back while still ours
    const data = fieldOf(fields, ALERT_ENTRY_DATA) ?? ''
    let payload: StoreBatchPayload
    try {
      payload = payloadOf('alertEvaluate', { data: JSON.parse(data) })
    } catch (error) {
      deadLetterAsRead(stream, id, data, `unreadable entry: ${asError(error).message}`)
      return
    }
    const points = pointsInPayload(payload)
    averagePoints = averagePoints === undefined ? points : averagePoints * 0.9 + points * 0.1
    const entry: HeldEntry = { ref, ...stream, id, payload, points, attemptsMade: 0 }
    held.set(ref, entry)
    heldPoints += points
    submit(entry)
  }

  /** Resolves with how many entries to read once there is room for more and reading is not paused. */
  async function roomToRead(): Promise<number> {
    while (!closing && (heldPoints >= targetPoints || Date.now() < pausedUntil)) {
      const pause = pausedUntil - Date.now()
      await new Promise<void>((resolve) => {
        wakeReaders.push(resolve)
        if (pause > 0) setTimeout(resolve, pause)
      })
    }
    const room = Math.ceil((targetPoints - heldPoints) / (averagePoints ?? 100))
    return Math.min(Math.max(room, 1), MAX_READ_COUNT)
  }

  // One blocking connection per read: all the partitions' streams in one XREADGROUP, except on a
  // Redis Cluster, where one command may only name keys of one slot: one read per partition there.
  const readGroups = connection instanceof Cluster ? streams.map((stream) => [stream]) : [streams]
  const readers = readGroups.map((group) => {
    const blocking = warnOnRedisErrors(connection.duplicate(), logger)
    return { blocking, loop: readLoop(blocking, group) }
  })

  async function readLoop(blocking: RedisConnection, group: typeof streams): Promise<void> {
    const keys = group.map((stream) => stream.key)
    while (!closing) {
      const count = await roomToRead()
      if (closing) return
      let reply: [string, RawStreamEntry[]][] | null
      try {
        reply = (await blocking.call(
          'XREADGROUP',
          'GROUP',
          ALERT_STREAM_GROUP,
          consumer,
          'COUNT',
          count,
          'BLOCK',
          options.blockMs ?? 5_000,
          'STREAMS',
          ...keys,
          ...keys.map(() => '>'),
        )) as [string, RawStreamEntry[]][] | null
      } catch (error) {
        if (closing) return
        const message = asError(error).message
        logger.warn({ queue: name, err: message }, 'reading the alert stream failed; retrying')
        // The stream was deleted (with its group): made again, from its first entry.
        if (message.startsWith('NOGROUP'))
          await Promise.all(keys.map((key) => ensureAlertStreamGroup(connection, key))).catch(() => undefined)
        else await sleep(1_000)
        continue
      }
      let read = 0
      for (const [key, entries] of reply ?? []) {
        const stream = group.find((s) => s.key === key) as (typeof streams)[number]
        for (const entry of entries) take(stream, entry)
        read += entries.length
      }
      // A short read: let entries gather for a linger, so that reads (and evaluations) stay few.
      if (read > 0 && read < count) await sleep(options.lingerMs)
    }
  }

  /** Resets the idle time of every entry held, so that no other consumer claims it. */
  async function renewHeld(): Promise<void> {
    const byKey = new Map<string, string[]>()
    for (const entry of held.values()) {
      const ids = byKey.get(entry.key)
      if (ids) ids.push(entry.id)
      else byKey.set(entry.key, [entry.id])
    }
    for (const [key, ids] of byKey) {
      for (let i = 0; i < ids.length; i += MAX_READ_COUNT)
        await connection.xclaim(
          key,
          ALERT_STREAM_GROUP,
          consumer,
          0,
          ...ids.slice(i, i + MAX_READ_COUNT),
          'JUSTID',
        )
    }
  }

  /** How many times each of `entries` (just claimed by this consumer) was delivered. */
  async function deliveriesOf(key: string, entries: RawStreamEntry[]): Promise<Map<string, number>> {
    const ids = entries.map(([id]) => id)
    const pending = (await connection.xpending(
      key,
      ALERT_STREAM_GROUP,
      ids[0] as string,
      ids[ids.length - 1] as string,
      MAX_READ_COUNT,
      consumer,
    )) as [id: string, consumer: string, idleMs: number, deliveries: number][]
    return new Map(pending.map(([id, , , deliveries]) => [id, Number(deliveries)]))
  }

  /** Takes over the entries other consumers left idle for `minIdleMs` (they died). */
  async function claimIdle(): Promise<void> {
    for (const stream of streams) {
      let cursor = '0-0'
      do {
        if (closing || heldPoints >= targetPoints) return
        const [next, entries] = (await connection.xautoclaim(
          stream.key,
          ALERT_STREAM_GROUP,
          consumer,
          options.minIdleMs,
          cursor,
          'COUNT',
          CLAIM_COUNT,
        )) as [string, (RawStreamEntry | null)[]]
        const taken = entries.filter((entry): entry is RawStreamEntry => entry !== null)
        cursor = next
        if (taken.length === 0) continue
        logger.warn(
          { queue: name, stream: stream.key, entries: taken.length },
          'claimed entries of a consumer that went idle',
        )
        const deliveries = await deliveriesOf(stream.key, taken)
        for (const entry of taken) {
          const times = deliveries.get(entry[0]) ?? 0
          if (times <= MAX_DELIVERIES) take(stream, entry)
          else {
            const reason = `taken over ${times - 1} times: every evaluator that held it stopped before judging it`
            deadLetterAsRead(stream, entry[0], fieldOf(entry[1], ALERT_ENTRY_DATA) ?? '', reason)
          }
        }
      } while (cursor !== '0-0')
    }
  }

  const every = (ms: number, task: () => Promise<void>, what: string) => {
    let running = false
    const timer = setInterval(() => {
      if (running || closing) return
      running = true
      task()
        .catch((error) => logger.warn({ queue: name, err: asError(error).message }, `${what} failed`))
        .finally(() => {
          running = false
        })
    }, ms)
    return timer
  }
  const renewal = every(Math.max(Math.floor(options.minIdleMs / 3), 250), renewHeld, 'renewing held entries')
  const claims = every(options.claimIntervalMs, claimIdle, 'claiming idle entries')
  const goneIdleMs = options.goneConsumerIdleMs ?? 3_600_000
  const forgetting = every(
    Math.min(goneIdleMs, 60_000),
    async () => {
      for (const { key } of streams) {
        const gone = await forgetGoneConsumers(connection, key, goneIdleMs)
        if (gone.length > 0)
          logger.info({ queue: name, stream: key, consumers: gone }, 'removed gone consumers')
      }
    },
    'removing gone consumers',
  )

  let closed: Promise<void> | undefined
  return {
    close() {
      // Stop reading; judge what is held for a while, then leave the rest pending (another consumer
      // claims it once idle), and send the last acknowledgements.
      closed ??= (async () => {
        closing = true
        wake()
        clearInterval(claims)
        clearInterval(forgetting)
        for (const { blocking } of readers) blocking.disconnect()
        await Promise.all(readers.map(({ loop }) => loop))
        const drained = await withDeadline(gatherer.drain(), options.shutdownDrainMs, 'shutdown drain').then(
          () => true,
          () => false,
        )
        if (!drained) {
          const left = gatherer.handBack(new LeftAtShutdownError('evaluator shutting down'))
          logger.warn(
            { queue: name, entries: left },
            'shutdown: left unjudged entries to the other evaluators',
          )
        }
        for (const entry of held.values()) clearTimeout(entry.retry)
        await flushing
        await flushAcks().catch(() => undefined)
        clearInterval(renewal)
      })()
      return closed
    },
  }
}
