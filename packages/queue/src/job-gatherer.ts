/**
 * Group commit for a queue consumer: jobs handed in one by one are held until `maxPoints` points are
 * waiting or `lingerMs` has passed, then written with one call. Each caller's promise settles with
 * the outcome of the write that carried its job, so a job completes only after its batch committed.
 */
export interface GatheredItem<T> {
  id: string
  points: number
  value: T
}

/** Resolves when the batch is stored; may name items that failed on their own (the rest succeeded). */
export type BatchWrite<T> = (items: GatheredItem<T>[]) => Promise<Map<string, Error> | undefined>

interface Waiter<T> {
  item: GatheredItem<T>
  resolve: () => void
  reject: (error: Error) => void
}

export class JobGatherer<T> {
  private waiting: Waiter<T>[] = []
  private waitingPoints = 0
  private timer: NodeJS.Timeout | undefined
  private readonly inFlight = new Set<Promise<void>>()

  constructor(
    private readonly write: BatchWrite<T>,
    private readonly maxPoints: number,
    private readonly lingerMs: number,
  ) {}

  add(item: GatheredItem<T>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject })
      this.waitingPoints += item.points
      if (this.waitingPoints >= this.maxPoints) this.flush()
      else this.timer ??= setTimeout(() => this.flush(), this.lingerMs)
    })
  }

  /** Writes whatever is waiting now; resolves once every write started so far has settled. */
  async drain(): Promise<void> {
    this.flush()
    await Promise.allSettled([...this.inFlight])
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    if (this.waiting.length === 0) return
    const batch = this.waiting
    this.waiting = []
    this.waitingPoints = 0
    const run = this.settle(batch)
    this.inFlight.add(run)
    void run.finally(() => this.inFlight.delete(run))
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
      const reason = error instanceof Error ? error : new Error(String(error))
      for (const waiter of batch) waiter.reject(reason)
    }
  }
}
