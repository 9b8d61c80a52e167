import { appendFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Probe, Sample, WatchedProcess, WatchedServer } from './sampler.js'
import { Sampler } from './sampler.js'
import type { BenchStores } from './stores.js'

/** Latency of the answers, in ms. */
export interface Latency {
  count?: number
  p50?: number
  p99?: number
  max?: number
}

/** What the load generator saw. */
export interface LoadOutcome {
  seconds: number
  /** Requests (HTTP) or messages (MQTT) sent, and how many were acknowledged (202, 204, PUBACK). */
  sent: number
  acknowledged: number
  acknowledgedPoints: number
  pointsPerMessage: number
  /** The answer that acknowledges: 202 (JSON), 204 (line protocol) or PUBACK (MQTT). */
  acknowledgedAs: string
  /** Answers by status (202, 204, 503, PUBACK, an error code). */
  statuses: Record<string, number>
  /** Messages the simulator could not send on time: every device was still waiting for an answer. */
  missed?: number
  /** Requests with no answer in 30 s (wrk's timeouts) and connection errors. */
  timeouts: number
  socketErrors: number
  latency: Latency
  /** Per status, when the load generator timed each request itself. */
  latencyAccepted?: Latency
  latencyRefused?: Latency
  /** Open loop: the answers to the requests due in the warm-up before the measured window. */
  latencyWarmUp?: Latency & { seconds: number }
  /** When the first 503 came back (epoch ms). */
  firstRefusalEpochMs?: number
  cpuSeconds: number
}

/** How far the stores are: points the system acknowledged, points in each store, work still queued. */
export interface DrainProgress {
  acknowledged: number
  postgres: number
  influx: number
  pending: number
}

export interface MeasurePlan {
  stores: BenchStores
  processes: WatchedProcess[]
  servers: WatchedServer[]
  probes: Probe[]
  /** Runs the load; `started` is to be called when the first request or message goes out. */
  load: (started: () => void) => Promise<LoadOutcome>
  progress: () => Promise<DrainProgress>
  /** Give up waiting for the stores after this long (then the result says so). */
  drainTimeoutMs: number
}

export interface Measurement {
  load: LoadOutcome
  /** Points the system says it acknowledged (gateway or bridge metrics, the yardstick's count). */
  systemAcknowledged: number
  drained: boolean
  /** Seconds from the first send until each store held every point it got (undefined: not drained). */
  secondsUntilStored: { postgres?: number; influx?: number }
  /** Points in each store at the end, counted in the store. */
  counted: { postgres: number; influx: number }
  peakRssMb: Map<string, number>
  cpu: ReturnType<Sampler['cpuInWindow']>
  series: Map<string, Sample[]>
  /** performance.now() of the first send and of the end of the load. */
  startedAt: number
  loadEndedAt: number
}

/**
 * Runs a scenario's load and measures it: CPU from the first send until both stores hold every
 * acknowledged point, the peak RSS of each process throughout, probes every second, and at the end
 * the points counted in each store.
 */
export async function measure(plan: MeasurePlan): Promise<Measurement> {
  const sampler = new Sampler(plan.processes, plan.servers, plan.probes)
  await sampler.start()
  let startedAt = 0
  let windowStarted: Promise<void> = Promise.resolve()
  try {
    const load = await plan.load(() => {
      startedAt = performance.now()
      windowStarted = sampler.markWindowStart()
    })
    await windowStarted
    const loadEndedAt = performance.now()

    // Drained: every store job done and each store holds at least every point acknowledged. A
    // store's time is when its count last grew: requests still in flight when the load stopped may
    // be stored too (the client no longer waits for their answer), and count as stored points.
    const lastGrowth = { postgres: { value: -1, at: 0 }, influx: { value: -1, at: 0 } }
    let drained = false
    let progress: DrainProgress = { acknowledged: 0, postgres: 0, influx: 0, pending: 0 }
    for (const giveUpAt = loadEndedAt + plan.drainTimeoutMs; performance.now() < giveUpAt; await sleep(200)) {
      // A reading that fails (an app slow to answer under load) is taken again at the next poll.
      const read = await plan.progress().catch(() => undefined)
      if (!read) continue
      progress = read
      const now = performance.now()
      // Where the drain stands at every poll, for reading later which side was behind.
      if (process.env.BENCH_PROGRESS_FILE) {
        const line = `${((now - startedAt) / 1000).toFixed(1)} ${JSON.stringify(read)}\n`
        appendFileSync(process.env.BENCH_PROGRESS_FILE, line)
      }
      for (const store of ['postgres', 'influx'] as const) {
        if (progress[store] !== lastGrowth[store].value)
          lastGrowth[store] = { value: progress[store], at: now }
      }
      const target = Math.max(progress.acknowledged, load.acknowledgedPoints)
      if (progress.postgres >= target && progress.influx >= target && progress.pending === 0) {
        drained = true
        break
      }
    }
    const secondsUntilStored: Measurement['secondsUntilStored'] = drained
      ? {
          postgres: (lastGrowth.postgres.at - startedAt) / 1000,
          influx: (lastGrowth.influx.at - startedAt) / 1000,
        }
      : {}
    await sampler.markWindowEnd()
    await sampler.stop()
    const [postgres, influx] = await Promise.all([plan.stores.countPostgres(), plan.stores.countInflux()])
    return {
      load,
      systemAcknowledged: progress.acknowledged,
      drained,
      secondsUntilStored,
      counted: { postgres, influx },
      peakRssMb: sampler.peakRssMb,
      cpu: sampler.cpuInWindow(),
      series: sampler.series,
      startedAt,
      loadEndedAt,
    }
  } finally {
    await sampler.stop()
  }
}
