import type { ScenarioResult } from './context.js'
import { figuresOf } from './figures.js'
import { decimal, integer, markdownTable } from './markdown-table.js'
import type { Latency } from './measure.js'
import { overloadFiguresOf } from './overload.js'

const ms = (latency: Latency | undefined) => `${decimal(latency?.p50)} / ${decimal(latency?.p99)}`

/** One scenario's tables: its figures, then each process's memory and CPU. */
export function printScenario(result: ScenarioResult): void {
  const m = result.measurement
  const f = figuresOf(result)
  const unit = result.unit === 'request' ? 'requests' : 'messages'
  const others = Object.entries(m.load.statuses)
    .filter(([status]) => status !== m.load.acknowledgedAs)
    .map(([status, n]) => `${status}×${integer(n)}`)
  const rows: string[][] = [
    [`${unit} answered in ${decimal(m.load.seconds)} s`, integer(m.load.sent)],
    [`${unit} acknowledged (${m.load.acknowledgedAs})`, integer(m.load.acknowledged)],
    [`other answers`, others.join(' ') || '0'],
    ...(m.load.missed === undefined
      ? []
      : [['not sent in time (every device waiting for its PUBACK)', integer(m.load.missed)]]),
    ['timeouts (30 s) / socket errors', `${integer(m.load.timeouts)} / ${integer(m.load.socketErrors)}`],
    [
      'points acknowledged (client / system count)',
      `${integer(m.load.acknowledgedPoints)} / ${integer(m.systemAcknowledged)}`,
    ],
    [`accepted ${unit}/s`, integer(f.acceptedMessagesPerSecond)],
    ['accepted points/s', integer(f.acceptedPointsPerSecond)],
    ['stored points/s, PostgreSQL (first send → drained)', integer(f.storedPostgres)],
    ['stored points/s, InfluxDB (first send → drained)', integer(f.storedInflux)],
    ['stored points/s, both stores', integer(f.storedBoth)],
    [
      `${result.unit} latency p50 / p99 ms${result.unit === 'message' ? ' (publish → PUBACK)' : ''}`,
      ms(m.load.latency),
    ],
  ]
  if (m.load.latencyAccepted)
    rows.push([`latency of the ${m.load.acknowledgedAs}s p50 / p99 ms`, ms(m.load.latencyAccepted)])
  if (m.load.latencyRefused?.count) rows.push(['latency of the 503s p50 / p99 ms', ms(m.load.latencyRefused)])
  const warm = m.load.latencyWarmUp
  if (warm)
    rows.push([
      `latency in the ${warm.seconds} s warm-up before them (not in the figures above) p50 / p99 / max ms`,
      `${ms(warm)} / ${decimal(warm.max)}`,
    ])
  if (result.id === '4') rows.push(...overloadRows(result))
  rows.push(
    [
      'drained (both stores hold every acknowledged point) after',
      m.drained
        ? `${decimal(Math.max(m.secondsUntilStored.postgres ?? 0, m.secondsUntilStored.influx ?? 0))} s`
        : 'NOT DRAINED (gave up)',
    ],
    [
      'every acknowledged point stored (counted in the stores)',
      `${f.everyAcknowledgedPointStored ? 'yes' : 'NO'}: PostgreSQL ${integer(m.counted.postgres)}, InfluxDB ${integer(m.counted.influx)}`,
    ],
    ['CPU of our processes per 1,000 points stored (ms)', decimal(f.cpuMsPerThousandPoints)],
  )
  console.log(`\n### ${result.id}. ${result.title} (${result.system})\n`)
  console.log(markdownTable(['figure', 'value'], rows))
  if (result.id === '4') {
    const series = overloadFiguresOf(result)
      .redisSeriesMb.map((mb) => decimal(mb))
      .join(' ')
    console.log(`\nRedis used_memory each second once the bound is reached (MB): ${series || '–'}`)
  }
  console.log()
  console.log(processTable(result))
}

function overloadRows(result: ScenarioResult): string[][] {
  const o = overloadFiguresOf(result)
  return [
    [
      'offered points/s (sent, accepted or not) / × stored',
      `${integer(o.offeredPointsPerSecond)} / ${decimal(o.offeredOverStored)}×`,
    ],
    [
      '503s (by cause); the backlog bound reached after',
      `${integer(o.refusals)}${o.backlogRefusals === undefined ? '' : ` (backlog ${integer(o.backlogRefusals)}, shed ${integer(o.shedRefusals ?? 0)})`}; bound reached after ${o.boundReachedAfter === undefined ? 'never' : `${decimal(o.boundReachedAfter)} s`}`,
    ],
    [
      'Redis used_memory once the bound is reached, min / max MB',
      `${decimal(o.redisMinMb)} / ${decimal(o.redisMaxMb)} (${o.redisFlat === undefined ? '–' : o.redisFlat ? 'flat' : 'GROWING'})`,
    ],
    ['stored points/s while refusing (the slower store)', integer(o.storedDuringOverload)],
  ]
}

function processTable(result: ScenarioResult): string {
  const m = result.measurement
  const wall = m.cpu.wallSeconds
  const share = (seconds: number) => `${decimal((100 * seconds) / wall, 0)}%`
  const rows: string[][] = []
  let listed = 0
  for (const [name, seconds] of m.cpu.processes) {
    rows.push([name, integer(m.peakRssMb.get(name)), decimal(seconds), share(seconds)])
    listed += seconds
  }
  const generator = result.unit === 'request' ? 'HTTP client (load generator)' : 'simulator (load generator)'
  rows.push([generator, '', decimal(m.load.cpuSeconds), share(m.load.cpuSeconds)])
  listed += m.load.cpuSeconds
  for (const [name, seconds] of m.cpu.servers) {
    rows.push([name, '', decimal(seconds), share(seconds)])
    listed += seconds
  }
  rows.push([
    'everything else on the machine (other users, the bench)',
    '',
    decimal(m.cpu.machine - listed),
    share(m.cpu.machine - listed),
  ])
  rows.push(['machine, all cores', '', decimal(m.cpu.machine), share(m.cpu.machine)])
  return `CPU from the first send until drained (${decimal(wall)} s; 100% = one core):\n\n${markdownTable(
    ['process', 'peak RSS MB', 'CPU s', 'CPU'],
    rows,
  )}`
}

/** Scenarios 1 and 2 beside their runs on the yardstick: every figure, and IoTFlow ÷ yardstick. */
export function printYardstickComparison(pairs: [ScenarioResult, ScenarioResult][]): void {
  console.log('\n### 5. The yardstick: scenarios 1 and 2 against direct synchronous writes\n')
  const rows: string[][] = []
  for (const [ours, theirs] of pairs) {
    const a = figuresOf(ours)
    const b = figuresOf(theirs)
    const row = (figure: string, x: number | undefined, y: number | undefined, digits = 0) =>
      rows.push([
        `${ours.id}: ${figure}`,
        digits ? decimal(x, digits) : integer(x),
        digits ? decimal(y, digits) : integer(y),
        x !== undefined && y ? `${decimal(x / y, 2)}×` : '–',
      ])
    row('accepted requests/s', a.acceptedMessagesPerSecond, b.acceptedMessagesPerSecond)
    row('accepted points/s', a.acceptedPointsPerSecond, b.acceptedPointsPerSecond)
    row('stored points/s, PostgreSQL', a.storedPostgres, b.storedPostgres)
    row('stored points/s, InfluxDB', a.storedInflux, b.storedInflux)
    row('stored points/s, both stores', a.storedBoth, b.storedBoth)
    row('latency p50 ms', a.latencyP50, b.latencyP50, 1)
    row('latency p99 ms', a.latencyP99, b.latencyP99, 1)
    row('peak RSS MB, gateway', a.peakRssMb.get('gateway'), b.peakRssMb.get('yardstick'))
    row('peak RSS MB, all our processes', sum(a.peakRssMb), sum(b.peakRssMb))
    row('CPU ms per 1,000 points (our processes)', a.cpuMsPerThousandPoints, b.cpuMsPerThousandPoints, 1)
  }
  console.log(markdownTable(['figure', 'IoTFlow', 'yardstick', 'IoTFlow ÷ yardstick'], rows))
  console.log('\n(rates: higher is better; latency, memory, CPU: lower is better)')
}

const sum = (values: Map<string, number>) => [...values.values()].reduce((a, b) => a + b, 0)
