import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Queue } from 'bullmq'
import { bullPrefix, queueCatalog, storeQueues } from '../catalog.js'
import { allPartitions, partitionPrefix, type QueueLayout, qualifiedByPartition } from '../partitions.js'
import { onSharedConnection, type RedisConnection } from '../redis/connection.js'

/**
 * A hold on the store writers, as a backup takes it: the store queues of every queue partition paused
 * (BullMQ's queue-wide pause flag, so every writer anywhere stops taking jobs) under a lease. The lease is a Redis key
 * holding the holder's token with a TTL (PX); the holder renews it while it works. When the holder
 * stops renewing (killed, crashed, cut off from Redis), the key expires and the writers, which look
 * every WRITER_HOLD_CHECK_MS, resume the queues the hold paused and log that a backup's hold lapsed.
 *
 * Keys, under the queue prefix's hash tag (one Redis Cluster slot):
 * - `{prefix}:writer-hold`: the lease, the holder's token, expiring `leaseMs` after its last renewal.
 * - `{prefix}:writer-hold:paused`: a hash, what the hold paused (token, queues, lease_ms, since);
 *   no TTL: it outlives the lease until someone resumes those queues, and no new hold is taken
 *   while it exists, so a late resume never lifts a newer hold.
 * - `{prefix}:writer-hold:resuming`: who is resuming a lapsed hold (one writer at a time).
 */
export const writerHoldKeys = (queuePrefix: string) => {
  const base = `${bullPrefix(queuePrefix)}:writer-hold`
  return { lease: base, paused: `${base}:paused`, resuming: `${base}:resuming` }
}

/** How often the writers look for a lapsed hold: a hold is lifted at most this long after its lease expired. */
export const WRITER_HOLD_CHECK_MS = 1_000
/** How long a writer that claimed a lapsed hold may take to resume its queues before another may. */
const RESUMING_CLAIM_MS = 10_000
/** How often a holder waiting for another hold to end asks again. */
const ACQUIRE_POLL_MS = 200
/** How often a new hold looks whether the writers' running batches are done. */
const IDLE_POLL_MS = 50

/** KEYS: lease, paused. ARGV: token, lease ms, queues (comma-separated), since (ms). 1 taken; 0 held; -1 a lapsed hold not yet lifted. */
const ACQUIRE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], 'token', ARGV[1], 'queues', ARGV[3], 'lease_ms', ARGV[2], 'since', ARGV[4])
return 1
`
/** KEYS: lease. ARGV: token, lease ms. 1 renewed; 0 the lease is not this token's (it lapsed). */
const RENEW_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`
/** KEYS: lease, paused. ARGV: token. Ends this token's hold, its queues resumed: 1; 0 not its own. */
const END_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('HGET', KEYS[2], 'token') == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
`
/**
 * KEYS: lease, paused, resuming. ARGV: claimer, claim ms. A lapsed hold (what it paused, its lease
 * gone) claimed for resuming, as a flat field/value list; nil when none or another claimer has it.
 */
const CLAIM_LAPSED_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return nil end
if redis.call('EXISTS', KEYS[2]) == 0 then return nil end
if not redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return nil end
return redis.call('HGETALL', KEYS[2])
`
/** KEYS: paused, resuming. ARGV: claimer, token. Forgets the lapsed hold this claimer resumed. */
const FORGET_LAPSED_SCRIPT = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'token') == ARGV[2] then redis.call('DEL', KEYS[1]) end
redis.call('DEL', KEYS[2])
return 1
`

/** A hold whose holder stopped renewing it: the writers resumed what it paused. */
export interface LapsedHold {
  token: string
  queues: string[]
  leaseMs: number
  /** When the hold was taken (ms since the epoch). */
  since: number
}

/** Thrown by `release` when the lease lapsed before it: the writers may have run during the hold. */
export class HoldLapsedError extends Error {
  override name = 'HoldLapsedError'
}

export interface WriterHold {
  /** Names this hold in Redis (and in the writers' log line if it lapses). */
  token: string
  /**
   * Ends the hold, resuming the queues it paused; may be called again. Rejects with HoldLapsedError
   * when the lease lapsed meanwhile (not renewed in time): the queues are then another's to resume.
   */
  release(): Promise<void>
}

export interface HoldOptions {
  /** The lease: the hold ends by itself this long after its holder last renewed it. */
  leaseMs: number
  /** Longest wait for the writers' running batches once the queues are paused. */
  idleTimeoutMs: number
  /** Longest wait for another holder's hold to end first. */
  waitMs: number
  /** Hears of a lapsed hold this one lifted before it could be taken. */
  onLapsedHold?: (lapsed: LapsedHold) => void
}

export function createWriterHolds(connection: RedisConnection, layout: QueueLayout) {
  // The lease under the base prefix; the store queues of every partition, named with their partition.
  const keys = writerHoldKeys(layout.prefix)
  const queues = new Map(
    allPartitions(layout).flatMap((partition) =>
      storeQueues.map((key) => {
        const name = queueCatalog[key].name as string
        const prefix = bullPrefix(partitionPrefix(layout, partition))
        return [
          qualifiedByPartition(layout, partition, name),
          new Queue(name, { connection, prefix, ...onSharedConnection }),
        ] as const
      }),
    ),
  )
  const queueNamed = (name: string) => queues.get(name)
  const claimer = randomUUID()

  /**
   * Resumes the queues of a hold whose lease lapsed, if there is one and no one else is at it;
   * resolves with it (undefined when none).
   */
  async function resumeLapsed(): Promise<LapsedHold | undefined> {
    const fields = (await connection.eval(
      CLAIM_LAPSED_SCRIPT,
      3,
      keys.lease,
      keys.paused,
      keys.resuming,
      claimer,
      RESUMING_CLAIM_MS,
    )) as string[] | null
    if (!fields) return undefined
    const record = new Map<string, string>()
    for (let i = 0; i + 1 < fields.length; i += 2) record.set(fields[i] as string, fields[i + 1] as string)
    const lapsed: LapsedHold = {
      token: record.get('token') ?? '',
      queues: (record.get('queues') ?? '').split(',').filter(Boolean),
      leaseMs: Number(record.get('lease_ms')),
      since: Number(record.get('since')),
    }
    for (const name of lapsed.queues) await queueNamed(name)?.resume()
    await connection.eval(FORGET_LAPSED_SCRIPT, 2, keys.paused, keys.resuming, claimer, lapsed.token)
    return lapsed
  }

  /**
   * Holds the writers: pauses every store queue not paused already (new and retried jobs wait; the
   * gateway and the bridge go on acknowledging) under a lease renewed every third of `leaseMs`, and
   * resolves once no job is active, so neither store changes until `release` or the lease lapses.
   * Queues paused before (by an operator) are left as they are. Waits up to `waitMs` for another
   * hold to end first (and lifts one that lapsed).
   */
  async function hold(options: HoldOptions): Promise<WriterHold> {
    const token = randomUUID()
    const deadline = Date.now() + options.waitMs
    let toPause: string[]
    for (;;) {
      toPause = []
      for (const [name, queue] of queues) if (!(await queue.isPaused())) toPause.push(name)
      const taken = (await connection.eval(
        ACQUIRE_SCRIPT,
        2,
        keys.lease,
        keys.paused,
        token,
        options.leaseMs,
        toPause.join(','),
        Date.now(),
      )) as number
      if (taken === 1) break
      if (taken === -1) {
        const lifted = await resumeLapsed()
        if (lifted) options.onLapsedHold?.(lifted)
      }
      if (Date.now() >= deadline) {
        const holder = await connection.get(keys.lease)
        throw new Error(
          `another backup holds the writers (hold ${holder ?? 'lapsing'}); waited ${options.waitMs} ms for it to end`,
        )
      }
      await sleep(ACQUIRE_POLL_MS)
    }

    let lapsed = false
    const renewal = new AbortController()
    const renewing = (async () => {
      const every = Math.max(1, Math.floor(options.leaseMs / 3))
      while (!lapsed) {
        try {
          await sleep(every, undefined, { signal: renewal.signal })
        } catch {
          return // released
        }
        // A renewal that fails (Redis unreachable) is tried again; the lease lapses if none succeeds.
        const renewed = await connection.eval(RENEW_SCRIPT, 1, keys.lease, token, options.leaseMs).then(
          (answer) => answer as number,
          () => undefined,
        )
        if (renewed === 0) lapsed = true
      }
    })()

    let released: Promise<void> | undefined
    const release = () => {
      released ??= (async () => {
        renewal.abort()
        await renewing
        // Renewed once more, which says whether the lease was this hold's all along: only its
        // holder can renew a token's key, and once expired it is gone for good.
        const renewed = lapsed
          ? 0
          : await connection.eval(RENEW_SCRIPT, 1, keys.lease, token, options.leaseMs)
        if (renewed !== 1) {
          throw new HoldLapsedError(
            `the hold on the writers lapsed (not renewed within its ${options.leaseMs} ms lease): the writers may have run during it`,
          )
        }
        const states = await Promise.all(toPause.map((name) => queueNamed(name)?.isPaused()))
        const resumedByHand = toPause.filter((_, i) => !states[i])
        // Resumed first, then the lease ended: until then no other hold is taken.
        for (const name of toPause) await queueNamed(name)?.resume()
        const ended = (await connection.eval(END_SCRIPT, 2, keys.lease, keys.paused, token)) as number
        if (ended !== 1)
          throw new HoldLapsedError('the hold on the writers lapsed while it was being released')
        if (resumedByHand.length > 0) {
          throw new Error(
            `${resumedByHand.join(', ')} resumed during the hold (by hand?): the writers may have run during it`,
          )
        }
      })()
      return released
    }

    try {
      for (const name of toPause) await queueNamed(name)?.pause()
      const idleBy = Date.now() + options.idleTimeoutMs
      for (;;) {
        const active = await Promise.all([...queues.values()].map((q) => q.getActiveCount()))
        if (active.every((n) => n === 0)) break
        if (Date.now() >= idleBy) {
          throw new Error(`the writers did not finish their running batches in ${options.idleTimeoutMs} ms`)
        }
        await sleep(IDLE_POLL_MS)
      }
    } catch (error) {
      await release().catch(() => {})
      throw error
    }
    return { token, release }
  }

  return {
    hold,
    resumeLapsed,
    close: () => Promise.all([...queues.values()].map((q) => q.close())).then(() => undefined),
  }
}

export type WriterHolds = ReturnType<typeof createWriterHolds>

/**
 * A writer's watch for lapsed holds: every WRITER_HOLD_CHECK_MS (and at once), resumes the store
 * queues of a hold whose holder stopped renewing its lease, logging it. A check that fails (Redis
 * away) is tried at the next.
 */
export function watchWriterHolds(
  connection: RedisConnection,
  layout: QueueLayout,
  logger: { warn(obj: object, msg?: string): void },
  checkMs: number = WRITER_HOLD_CHECK_MS,
): { close(): Promise<void> } {
  const holds = createWriterHolds(connection, layout)
  const stop = new AbortController()
  void (async () => {
    while (!stop.signal.aborted) {
      const lapsed = await holds.resumeLapsed().catch(() => undefined)
      if (lapsed) {
        logger.warn(
          {
            hold: lapsed.token,
            queues: lapsed.queues,
            lease_ms: lapsed.leaseMs,
            held_since: new Date(lapsed.since).toISOString(),
          },
          "a backup's hold on the writers lapsed (its lease was not renewed); store queues resumed",
        )
      }
      await sleep(checkMs, undefined, { signal: stop.signal }).catch(() => {})
    }
  })()
  let closing: Promise<void> | undefined
  return {
    // A check in flight is not waited for (with Redis away it would wait as long): one cut short
    // leaves its claim to expire, and another writer lifts the hold.
    close() {
      closing ??= (async () => {
        stop.abort()
        await holds.close()
      })()
      return closing
    },
  }
}
