/** The p-th percentile (nearest rank) of values sorted ascending; undefined when there are none. */
export function percentile(sorted: ArrayLike<number>, p: number): number | undefined {
  if (sorted.length === 0) return undefined
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

/** Messages sent and how each was answered, with the latency of each answer. */
export class Tally {
  sent = 0
  accepted = 0
  /** Answers other than an acceptance, by status (a number for HTTP, an error code otherwise). */
  readonly refused = new Map<string, number>()
  /** Sends skipped because every device was still waiting for its previous answer. */
  missed = 0
  private latencies: number[] = []

  record(accepted: boolean, status: string, latencyMs: number): void {
    if (accepted) this.accepted++
    else this.refused.set(status, (this.refused.get(status) ?? 0) + 1)
    this.latencies.push(latencyMs)
  }

  refusedCount(): number {
    let n = 0
    for (const count of this.refused.values()) n += count
    return n
  }

  latency() {
    const sorted = Float64Array.from(this.latencies).sort()
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: percentile(sorted, 100) }
  }
}
