import { asError } from './as-error.js'

/**
 * Group commit for a queue consumer: jobs handed in one by one are held until `maxPoints` points are
 * waiting or the oldest has waited `lingerMs`, then written with one call. At most `maxInFlight`
 * writes run at once; while they do, new jobs gather into the next batch. Each caller's promise
 * settles with the outcome of the write that carried its job, so a job completes only after its
 * batch committed.
 */
export interface GatheredItem<T> {
  id: string
  points: number
  value: T
}

/** Resolves when the batch is stored; may name items that failed on their own (the rest succeeded). */
export type BatchWrite<T> = (items: GatheredItem<T>[]) => Promise<Map<string, Error> | undefined>

export interface GathererLimits {
  maxPoints: number
  lingerMs: number
  maxInFlight: number
}

interface Waiter<T> {
  item: GatheredItem<T>
  resolve: () => void
  reject: (error: Error) => void
}

export class JobGatherer<T> {
  private waiting: Waiter<T>[] = []
  private waitingPoints = 0
  private timer: NodeJS.Timeout | undefined
  // True once the oldest waiting job has lingered long enough, or while draining.
  private due = false
  private readonly inFlight = new Set<Promise<void>>()

  constructor(
    private readonly write: BatchWrite<T>,
    private readonly limits: GathererLimits,
  ) {}

  add(item: GatheredItem<T>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject })
      this.waitingPoints += item.points
      this.timer ??= setTimeout(() => {
        this.due = true
        this.pump()
      }, this.limits.lingerMs)
      this.pump()
    })
  }

  /** Writes whatever is waiting now; resolves once everything handed in so far has settled. */
  async drain(): Promise<void> {
    this.due = true
    this.pump()
    while (this.inFlight.size > 0) {
      await Promise.allSettled([...this.inFlight])
      this.pump()
    }
  }

  /**
   * Rejects every job still waiting (not yet being written) with `reason`, so its consumer can hand
   * it back to the queue; writes already running are left to finish. Returns how many were handed back.
   */
  handBack(reason: Error): number {
    const waiting = this.waiting
    this.waiting = []
    this.waitingPoints = 0
    clearTimeout(this.timer)
    this.timer = undefined
    for (const waiter of waiting) waiter.reject(reason)
    return waiting.length
  }

  private pump(): void {
    while (
      this.waiting.length > 0 &&
      this.inFlight.size < this.limits.maxInFlight &&
      (this.due || this.waitingPoints >= this.limits.maxPoints)
    ) {
      const run = this.settle(this.takeBatch())
      this.inFlight.add(run)
      void run.finally(() => {
        this.inFlight.delete(run)
        this.pump()
      })
    }
    if (this.waiting.length === 0) {
      clearTimeout(this.timer)
      this.timer = undefined
      this.due = false
    }
  }

  /** The oldest waiting jobs, up to `maxPoints` points (at least one job). */
  private takeBatch(): Waiter<T>[] {
    let points = 0
    let count = 0
    while (
      count < this.waiting.length &&
      (count === 0 || points + (this.waiting[count]?.item.points ?? 0) <= this.limits.maxPoints)
    ) {
      points += this.waiting[count]?.item.points ?? 0
      count++
    }
    this.waitingPoints -= points
    return this.waiting.splice(0, count)
  }

  private async settle(batch: Waiter<T>[]): Promise<void> {
    try {
      const failures = await this.write(batch.map((w) => w.item))
      for (const waiter of batch) {
        const failure = failures?.get(waiter.item.id)
        if (failure) waiter.reject(failure)
        else waiter.resolve()
      }
    } catch (error) {
      const reason = asError(error)
      for (const waiter of batch) waiter.reject(reason)
    }
  }
}
