import type { Metrics, StoreName } from './registry.js'

/**
 * Wraps a writer's batch write with its metrics: points per batch, write duration and outcome,
 * failures by kind, and, once committed, the latency from acknowledgement to stored. `pointsOf`
 * counts a payload's points (the writers pass contracts' `pointCount`, which knows every shape a
 * queued batch may have).
 */
export function instrumentStoreWrites<T extends { received_at: number }>(
  metrics: Metrics,
  store: StoreName,
  writeBatch: (payloads: T[]) => Promise<void>,
  classify: (error: Error) => string,
  pointsOf: (payload: T) => number,
): (payloads: T[]) => Promise<void> {
  return async (payloads) => {
    const points = payloads.reduce((sum, payload) => sum + pointsOf(payload), 0)
    metrics.storeBatchPoints.observe({ store }, points)
    const stopTimer = metrics.storeWriteDuration.startTimer({ store })
    try {
      await writeBatch(payloads)
    } catch (error) {
      stopTimer({ outcome: 'error' })
      const kind = classify(error instanceof Error ? error : new Error(String(error)))
      metrics.storeWriteFailures.inc({ store, kind })
      throw error
    }
    stopTimer({ outcome: 'ok' })
    metrics.storePointsWritten.inc({ store }, points)
    const now = Date.now()
    for (const payload of payloads) {
      metrics.endToEndLatency.observe({ store }, Math.max(0, now - payload.received_at) / 1000)
    }
  }
}
