import type { ScenarioResult } from './context.js'
import { figuresOf } from './figures.js'
import { decimal, integer, markdownTable } from './markdown-table.js'

/** The two sides of an A/B/B/A comparison: which side a run is on, and the ratio's terms. */
export interface Alternation {
  heading: string
  sideOf: (run: ScenarioResult) => string
  /** The ratio is this side's sum over the other's. */
  numerator: string
  denominator: string
  /** What the ratio is asked to reach, said after it. */
  goal?: string
}

/** Scenario 7: IoTFlow against the yardstick. */
export const OUTSIDE_STYLE: Alternation = {
  heading: '7. Outside-style, A/B/B/A: a Node client, 16 clients, 1,000-point batches',
  sideOf: (run) => run.system,
  numerator: 'IoTFlow',
  denominator: 'yardstick',
}

/**
 * An A/B/B/A comparison (scenarios 7 and 10): every run in the order it ran, then the ratio of the
 * sums of stored points/s (both stores), which cancels a drift of the machine that is linear over
 * the four runs.
 */
export function printAlternation(runs: ScenarioResult[], alternation: Alternation): void {
  console.log(`\n### ${alternation.heading}\n`)
  const rows = runs.map((run, i) => {
    const f = figuresOf(run)
    return [
      String(i + 1),
      alternation.sideOf(run),
      integer(f.acceptedPointsPerSecond),
      integer(f.storedPostgres),
      integer(f.storedInflux),
      integer(f.storedBoth),
      decimal(f.cpuMsPerThousandPoints),
      f.everyAcknowledgedPointStored ? 'yes' : 'NO',
    ]
  })
  console.log(
    markdownTable(
      [
        'run',
        'system',
        'accepted points/s',
        'stored/s PostgreSQL',
        'stored/s InfluxDB',
        'stored/s both',
        'CPU ms per 1,000 points (ours)',
        'all stored',
      ],
      rows,
    ),
  )
  const sums = storedSums(runs, alternation)
  const ratio = alternationRatio(runs, alternation)
  console.log(
    `\nsums of stored points/s, both stores: ${alternation.numerator} ${integer(sums.numerator)}, ` +
      `${alternation.denominator} ${integer(sums.denominator)}: ${decimal(ratio, 2)}×` +
      (alternation.goal ? ` (goal: ${alternation.goal})` : ''),
  )
  // On a loaded machine the rates say more about the other users than about the systems compared:
  // the CPU each side spent on a point is the steadier figure.
  const cpu = meanCpuPerThousandPoints(runs, alternation)
  console.log(
    `mean CPU ms per 1,000 points stored (our processes): ${alternation.numerator} ${decimal(cpu.numerator)}, ` +
      `${alternation.denominator} ${decimal(cpu.denominator)}: ` +
      `${decimal(cpu.numerator && cpu.denominator ? cpu.numerator / cpu.denominator : undefined, 2)}×`,
  )
}

function meanCpuPerThousandPoints(runs: ScenarioResult[], alternation: Alternation) {
  const mean = (side: string) => {
    const values = runs
      .filter((run) => alternation.sideOf(run) === side)
      .map((run) => figuresOf(run).cpuMsPerThousandPoints)
    if (values.length === 0 || values.some((v) => v === undefined)) return undefined
    return (values as number[]).reduce((a, b) => a + b, 0) / values.length
  }
  return { numerator: mean(alternation.numerator), denominator: mean(alternation.denominator) }
}

/** The numerator side's sum of stored points/s (both stores) over the denominator side's. */
export function alternationRatio(runs: ScenarioResult[], alternation: Alternation): number | undefined {
  const sums = storedSums(runs, alternation)
  return sums.denominator > 0 ? sums.numerator / sums.denominator : undefined
}

function storedSums(runs: ScenarioResult[], alternation: Alternation) {
  const sums = { numerator: 0, denominator: 0 }
  for (const run of runs) {
    const side = alternation.sideOf(run)
    const stored = figuresOf(run).storedBoth ?? 0
    if (side === alternation.numerator) sums.numerator += stored
    else if (side === alternation.denominator) sums.denominator += stored
  }
  return sums
}

/**
 * Scenario 8: latency at fixed offered rates, counted from when each request was due, for IoTFlow
 * and the yardstick at each rate; the warm-up's p99 and max beside, which the others leave out.
 */
export function printFixedRates(runs: { rate: number; result: ScenarioResult }[]): void {
  console.log(
    '\n### 8. Latency at a fixed offered rate (single-point requests, from the time each was due)\n',
  )
  const rows = runs.map(({ rate, result }) => {
    const f = figuresOf(result)
    const accepted = result.measurement.load.latencyAccepted
    const warmUp = result.measurement.load.latencyWarmUp
    return [
      integer(rate),
      result.system,
      integer(f.acceptedMessagesPerSecond),
      decimal(accepted?.p50 ?? f.latencyP50),
      decimal(accepted?.p99 ?? f.latencyP99),
      decimal(result.measurement.load.latency.max),
      warmUp ? `${decimal(warmUp.p99)} / ${decimal(warmUp.max)}` : '–',
      String(result.measurement.load.timeouts + result.measurement.load.socketErrors),
    ]
  })
  console.log(
    markdownTable(
      [
        'offered requests/s',
        'system',
        'accepted requests/s',
        'p50 ms',
        'p99 ms',
        'max ms',
        'warm-up p99 / max ms',
        'errors',
      ],
      rows,
    ),
  )
}
