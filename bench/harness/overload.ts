import type { ScenarioResult } from './context.js'
import { figuresOf, ratePerSecond, samplesBetween } from './figures.js'

/** What scenario 4 shows about backpressure, from its per-second samples. */
export interface OverloadFigures {
  /** Seconds from the first send until the first 503 of the backlog bound: when the bound was reached. */
  boundReachedAfter?: number
  refusals: number
  /** The 503s by cause, by the gateway's count: the backlog bound, and load shedding. */
  backlogRefusals?: number
  shedRefusals?: number
  /** Points offered by the clients (sent, accepted or not) per second, and that over what was stored. */
  offeredPointsPerSecond: number
  offeredOverStored?: number
  /** Redis used_memory once the bound was reached, until the end of the load (MB). */
  redisMinMb?: number
  redisMaxMb?: number
  /** No growth: the highest sample of the second half at most 10% (+1 MB) above that of the first half. */
  redisFlat?: boolean
  /** Every sample once the bound was reached (MB), one a second. */
  redisSeriesMb: number[]
  /** Points per second written to each store while the gateway was refusing, the slower store. */
  storedDuringOverload?: number
}

const MB = 1024 * 1024

export function overloadFiguresOf(result: ScenarioResult): OverloadFigures {
  const m = result.measurement
  const refusals = m.load.statuses['503'] ?? 0
  const offeredPointsPerSecond = (m.load.sent * m.load.pointsPerMessage) / m.load.seconds
  const { storedBoth } = figuresOf(result)
  const figures: OverloadFigures = {
    redisSeriesMb: [],
    refusals,
    offeredPointsPerSecond,
    offeredOverStored: storedBoth ? offeredPointsPerSecond / storedBoth : undefined,
  }
  const backlog = m.series.get('backlog refusals') ?? []
  figures.backlogRefusals = backlog.at(-1)?.value
  figures.shedRefusals = m.series.get('shed refusals')?.at(-1)?.value
  // The bound is reached at the first 503 of the backlog (the sample that first counts one); a 503
  // of load shedding says nothing about it. Without the gateway's count, the first 503 at all.
  const firstBacklogRefusal = backlog.find((sample) => sample.value > 0)?.at
  const boundAt =
    backlog.length > 0
      ? firstBacklogRefusal
      : m.load.firstRefusalEpochMs === undefined
        ? undefined
        : m.load.firstRefusalEpochMs - performance.timeOrigin
  if (boundAt === undefined) return figures

  figures.boundReachedAfter = (boundAt - m.startedAt) / 1000
  const memory = samplesBetween(m.series.get('redis used_memory'), boundAt, m.loadEndedAt).map((s) => s.value)
  figures.redisSeriesMb = memory.map((bytes) => bytes / MB)
  if (memory.length > 0) {
    figures.redisMinMb = Math.min(...memory) / MB
    figures.redisMaxMb = Math.max(...memory) / MB
    const half = Math.floor(memory.length / 2)
    if (half > 0) {
      figures.redisFlat = Math.max(...memory.slice(half)) <= 1.1 * Math.max(...memory.slice(0, half)) + MB
    }
  }
  const rates = ['stored postgres', 'stored influx'].map((probe) =>
    ratePerSecond(samplesBetween(m.series.get(probe), boundAt, m.loadEndedAt)),
  )
  if (rates.every((r) => r !== undefined)) figures.storedDuringOverload = Math.min(...(rates as number[]))
  return figures
}
