/**
 * Keeps `last_seen` current without a database write per request: touches are held in memory and
 * written in one statement per flush. Readers merge the pending value, so a device sees its own
 * heartbeat at once.
 */
export class LastSeenTracker {
  private pendingSeen = new Map<number, number>()

  constructor(private readonly write: (seen: Map<number, number>) => Promise<void>) {}

  touch(deviceId: number, at = Date.now()): void {
    const previous = this.pendingSeen.get(deviceId) ?? 0
    if (at > previous) this.pendingSeen.set(deviceId, at)
  }

  /** The newest touch not yet written, if any. */
  pending(deviceId: number): number | undefined {
    return this.pendingSeen.get(deviceId)
  }

  /** Writes what is pending; on failure it is kept for the next flush (newer touches win). */
  async flush(): Promise<void> {
    if (this.pendingSeen.size === 0) return
    const batch = this.pendingSeen
    this.pendingSeen = new Map()
    try {
      await this.write(batch)
    } catch (error) {
      for (const [id, at] of batch) this.touch(id, at)
      throw error
    }
  }
}
