import type { ScenarioResult } from './context.js'
import type { Measurement } from './measure.js'
import type { Sample } from './sampler.js'

/** The figures of one run, derived from its measurement: what the tables and the goals read. */
export interface Figures {
  acceptedPointsPerSecond: number
  acceptedMessagesPerSecond: number
  /** Points/s stored in each store, from the first send until it held every acknowledged point. */
  storedPostgres?: number
  storedInflux?: number
  /** Until both held them all. */
  storedBoth?: number
  latencyP50?: number
  latencyP99?: number
  /** Both stores hold every point acknowledged to the client, the same number in each. */
  everyAcknowledgedPointStored: boolean
  /** CPU seconds of the system's own processes (apps, Redis, broker; not the shared databases). */
  systemCpuSeconds: number
  /** Those CPU seconds per 1,000 points stored, in ms: the cost of a point. */
  cpuMsPerThousandPoints?: number
  peakRssMb: Map<string, number>
}

export function figuresOf(result: ScenarioResult): Figures {
  const m = result.measurement
  const { postgres, influx } = m.secondsUntilStored
  const both = postgres !== undefined && influx !== undefined ? Math.max(postgres, influx) : undefined
  const stored = Math.min(m.counted.postgres, m.counted.influx)
  const rate = (points: number, seconds: number | undefined) => (seconds ? points / seconds : undefined)
  let systemCpuSeconds = 0
  for (const seconds of m.cpu.processes.values()) systemCpuSeconds += seconds
  return {
    acceptedPointsPerSecond: m.load.acknowledgedPoints / m.load.seconds,
    acceptedMessagesPerSecond: m.load.acknowledged / m.load.seconds,
    storedPostgres: rate(m.counted.postgres, postgres),
    storedInflux: rate(m.counted.influx, influx),
    storedBoth: rate(stored, both),
    latencyP50: m.load.latency.p50,
    latencyP99: m.load.latency.p99,
    everyAcknowledgedPointStored: everyAcknowledgedPointStored(m),
    systemCpuSeconds,
    cpuMsPerThousandPoints:
      m.counted.postgres > 0 ? (systemCpuSeconds * 1e6) / m.counted.postgres : undefined,
    peakRssMb: m.peakRssMb,
  }
}

export function everyAcknowledgedPointStored(m: Measurement): boolean {
  const { postgres, influx } = m.counted
  return postgres === influx && postgres >= m.load.acknowledgedPoints
}

/** The samples of a probe taken between two performance.now() times. */
export function samplesBetween(samples: Sample[] | undefined, from: number, to: number): Sample[] {
  return (samples ?? []).filter((s) => s.at >= from && s.at <= to)
}

/** Units per second between the first and last of the samples of a counter. */
export function ratePerSecond(samples: Sample[]): number | undefined {
  const first = samples[0]
  const last = samples[samples.length - 1]
  if (!first || !last || last.at === first.at) return undefined
  return ((last.value - first.value) * 1000) / (last.at - first.at)
}
