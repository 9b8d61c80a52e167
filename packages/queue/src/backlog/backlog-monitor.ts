import type { Logger } from '@iotflow/runtime'
import type { QueueLayout } from '../partitions.js'
import type { RedisConnection } from '../redis/connection.js'
import { type BacklogPoints, readBacklogByPartition, sumBacklogs } from './backlog.js'

/** How the backlog stands against its bound, as /health/ready shows it. */
export interface BacklogReport {
  state: 'ok' | 'over-limit'
  /** BACKLOG_MAX_POINTS: at or over it, producers stop taking telemetry. */
  limit: number
  /** Points queued but not yet stored, per store queue, over all queue partitions. */
  points: BacklogPoints
  /** With QUEUE_PARTITIONS > 1: the share of each partition counted, by partition number. */
  partitions?: Record<string, BacklogPoints>
}

/**
 * The report of the backlogs of the partitions in `byPartition` (by partition number). The bound
 * holds for their sum: it guards the stores, which every partition fills.
 */
export function backlogReport(
  byPartition: Record<string, BacklogPoints>,
  limit: number,
  layout: QueueLayout,
): BacklogReport {
  const points = sumBacklogs(Object.values(byPartition))
  const over = Object.values(points).some((value) => value >= limit)
  return {
    state: over ? 'over-limit' : 'ok',
    limit,
    points,
    ...(layout.partitions > 1 && { partitions: byPartition }),
  }
}

/** A report's backlog per partition (its number), the one partition of a single-partition layout included. */
export const backlogByPartition = (report: BacklogReport): Record<string, BacklogPoints> =>
  report.partitions ?? { 0: report.points }

export interface BacklogMonitor {
  /** BACKLOG_MAX_POINTS. */
  readonly limit: number
  /** True while some store queue's backlog is at or over the limit (as of the last reading). */
  readonly overLimit: boolean
  /** The last reading; undefined until one succeeded. */
  readonly last: BacklogReport | undefined
  /** Reads the counters now (for /health/ready and /metrics); rejects when Redis does not answer. */
  readNow(): Promise<BacklogReport>
  /**
   * Resolves at once when under the limit, else once a reading is (or the monitor closes); rejects
   * when `signal` aborts.
   */
  whenUnderLimit(signal?: AbortSignal): Promise<void>
  close(): Promise<void>
}

export interface BacklogMonitorOptions {
  redis: RedisConnection
  /** Every partition counts. */
  queues: QueueLayout
  limit: number
  /** How often the counters are read (one HMGET per partition, at once). */
  intervalMs?: number
  logger: Pick<Logger, 'warn'>
}

const DEFAULT_INTERVAL_MS = 250
/**
 * A failing read is logged after this many in a row, then again every as many (every 10 s at the
 * default interval): a producer that starts while Redis is still connecting says nothing.
 */
const LOG_EVERY_FAILURES = 40

/**
 * Reads the backlog counters every `intervalMs` (the partitions at once), so that a producer decides per
 * request or message from memory, without a Redis call of its own. A failed read keeps the last
 * reading: while Redis is unreachable the enqueue fails anyway, and the producer says so.
 */
export async function startBacklogMonitor(options: BacklogMonitorOptions): Promise<BacklogMonitor> {
  const { redis, queues, limit, logger } = options
  let last: BacklogReport | undefined
  let failures = 0
  let waiters: (() => void)[] = []
  let reading: Promise<void> | undefined

  function update(points: BacklogPoints[]): BacklogReport {
    failures = 0
    last = backlogReport(Object.fromEntries(points.entries()), limit, queues)
    if (last.state === 'ok' && waiters.length > 0) {
      const release = waiters
      waiters = []
      for (const resolve of release) resolve()
    }
    return last
  }

  function read(): Promise<void> {
    reading ??= readBacklogByPartition(redis, queues)
      .then(
        (points) => {
          update(points)
        },
        (error: Error) => {
          if (++failures % LOG_EVERY_FAILURES === 0) {
            logger.warn({ err: error.message }, 'could not read the queue backlog; keeping the last reading')
          }
        },
      )
      .finally(() => {
        reading = undefined
      })
    return reading
  }

  await read()
  const timer = setInterval(read, options.intervalMs ?? DEFAULT_INTERVAL_MS)
  const overLimit = () => last?.state === 'over-limit'

  return {
    limit,
    get overLimit() {
      return overLimit()
    },
    get last() {
      return last
    },
    readNow: () => readBacklogByPartition(redis, queues).then(update),
    whenUnderLimit(signal) {
      if (!overLimit()) return Promise.resolve()
      return new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason)
        const onAbort = () => {
          waiters = waiters.filter((waiter) => waiter !== done)
          reject(signal?.reason)
        }
        const done = () => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        }
        waiters.push(done)
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    },
    async close() {
      clearInterval(timer)
      await reading
      const abandoned = waiters
      waiters = []
      for (const resolve of abandoned) resolve()
    },
  }
}
