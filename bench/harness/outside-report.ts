import type { ScenarioResult } from './context.js'
import { figuresOf } from './figures.js'
import { decimal, integer, markdownTable } from './markdown-table.js'

/**
 * Scenario 7: every run in the order it ran (IoTFlow, yardstick, yardstick, IoTFlow), then the
 * ratio of the sums of stored points/s (both stores), which cancels a drift of the machine that
 * is linear over the four runs.
 */
export function printAlternation(runs: ScenarioResult[]): void {
  console.log('\n### 7. Outside-style, A/B/B/A: a Node client, 16 clients, 1,000-point batches\n')
  const rows = runs.map((run, i) => {
    const f = figuresOf(run)
    return [
      String(i + 1),
      run.system,
      integer(f.acceptedPointsPerSecond),
      integer(f.storedPostgres),
      integer(f.storedInflux),
      integer(f.storedBoth),
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
        'all stored',
      ],
      rows,
    ),
  )
  const sums = storedSums(runs)
  const ratio = alternationRatio(runs)
  console.log(
    `\nsums of stored points/s, both stores: IoTFlow ${integer(sums.IoTFlow)}, yardstick ${integer(sums.yardstick)}: ${decimal(ratio, 2)}×`,
  )
}

/** Scenario 7's result: IoTFlow's sum of stored points/s (both stores) over the yardstick's. */
export function alternationRatio(runs: ScenarioResult[]): number | undefined {
  const sums = storedSums(runs)
  return sums.yardstick > 0 ? sums.IoTFlow / sums.yardstick : undefined
}

function storedSums(runs: ScenarioResult[]): Record<ScenarioResult['system'], number> {
  const sums = { IoTFlow: 0, yardstick: 0 }
  for (const run of runs) sums[run.system] += figuresOf(run).storedBoth ?? 0
  return sums
}

/**
 * Scenario 8: latency at fixed offered rates, counted from when each request was due, for IoTFlow
 * and the yardstick at each rate.
 */
export function printFixedRates(runs: { rate: number; result: ScenarioResult }[]): void {
  console.log(
    '\n### 8. Latency at a fixed offered rate (single-point requests, from the time each was due)\n',
  )
  const rows = runs.map(({ rate, result }) => {
    const f = figuresOf(result)
    const accepted = result.measurement.load.latencyAccepted
    return [
      integer(rate),
      result.system,
      integer(f.acceptedMessagesPerSecond),
      decimal(accepted?.p50 ?? f.latencyP50),
      decimal(accepted?.p99 ?? f.latencyP99),
      decimal(result.measurement.load.latency.max),
      String(result.measurement.load.timeouts + result.measurement.load.socketErrors),
    ]
  })
  console.log(
    markdownTable(
      ['offered requests/s', 'system', 'accepted requests/s', 'p50 ms', 'p99 ms', 'max ms', 'errors'],
      rows,
    ),
  )
}
