import type { Metrics, StoreName } from './registry.js'

interface AcknowledgedBatch {
  received_at: number
  points: readonly unknown[]
}

/**
 * Wraps a writer's batch write with its metrics: points per batch, write duration and outcome,
 * failures by kind, and, once committed, the latency from acknowledgement to stored.
 */
export function instrumentStoreWrites<T extends AcknowledgedBatch>(
  metrics: Metrics,
  store: StoreName,
  writeBatch: (payloads: T[]) => Promise<void>,
  classify: (error: Error) => string,
): (payloads: T[]) => Promise<void> {
  return async (payloads) => {
    const points = payloads.reduce((sum, payload) => sum + payload.points.length, 0)
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
