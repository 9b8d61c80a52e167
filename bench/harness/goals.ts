import { CLUSTER_AGAINST_SINGLE, CLUSTER_GOAL, ON_CLUSTER, ON_SINGLE_REDIS } from './cluster-scenario.js'
import type { ScenarioResult } from './context.js'
import { figuresOf } from './figures.js'
import { decimal, integer, markdownTable } from './markdown-table.js'
import { alternationRatio } from './outside-report.js'
import { overloadFiguresOf } from './overload.js'

/** 'no data': the scenario ran but did not produce the figure (e.g. no 503, so no overload). */
type Verdict = 'pass' | 'MISS' | 'not run' | 'no data'

interface Goal {
  goal: string
  target: string
  measured: string
  verdict: Verdict
}

const verdict = (ok: boolean | undefined): Verdict => (ok === undefined ? 'not run' : ok ? 'pass' : 'MISS')
const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? a / b : undefined)

/** The goals of issues 8, 14 and 19, each with what this run measured and whether it is met. */
export function goalsOf(results: ScenarioResult[]): Goal[] {
  const byId = new Map(results.map((r) => [r.id, r]))
  const figures = (id: string) => {
    const result = byId.get(id)
    return result ? figuresOf(result) : undefined
  }
  const s1 = figures('1')
  const s2 = figures('2')
  const s3 = figures('3')
  const s6 = figures('6')
  const y1 = figures('5.1')
  const y2 = figures('5.2')
  const s4 = byId.get('4')
  const overload = s4 ? overloadFiguresOf(s4) : undefined
  const goals: Goal[] = []
  const add = (goal: string, target: string, measured: string, ok: boolean | undefined) =>
    goals.push({ goal, target, measured: ok === undefined ? '–' : measured, verdict: verdict(ok) })

  add(
    '1. stored in both stores',
    '≥ 60,000 points/s',
    `${integer(s1?.storedBoth)} points/s`,
    s1 && (s1.storedBoth ?? 0) >= 60_000,
  )
  const r1 = ratio(s1?.storedBoth, y1?.storedBoth)
  add(
    '1. against the yardstick (stored, both stores)',
    '≥ 1.0×',
    `${decimal(r1, 2)}×`,
    r1 === undefined ? undefined : r1 >= 1,
  )
  add(
    '2. requests accepted',
    '≥ 8,000 requests/s',
    `${integer(s2?.acceptedMessagesPerSecond)} requests/s`,
    s2 && s2.acceptedMessagesPerSecond >= 8_000,
  )
  add(
    '2. request latency p99',
    '< 50 ms',
    `${decimal(s2?.latencyP99)} ms`,
    s2 && s2.latencyP99 !== undefined && s2.latencyP99 < 50,
  )
  const r2 = ratio(s2?.acceptedMessagesPerSecond, y2?.acceptedMessagesPerSecond)
  add(
    '2. against the yardstick (requests/s accepted)',
    '≥ 5×',
    `${decimal(r2, 2)}×`,
    r2 === undefined ? undefined : r2 >= 5,
  )
  const p99Ratio = ratio(y2?.latencyP99, s2?.latencyP99)
  add(
    '2. against the yardstick (p99, yardstick ÷ ours)',
    '≥ 5×',
    `${decimal(p99Ratio, 2)}×`,
    p99Ratio === undefined ? undefined : p99Ratio >= 5,
  )
  add(
    '3. MQTT messages stored end to end',
    '≥ 5,000 messages/s',
    `${integer(s3?.storedBoth)} messages/s`,
    s3 && (s3.storedBoth ?? 0) >= 5_000,
  )
  add(
    '4. Redis memory flat once the bound is reached',
    'no growth',
    overload?.boundReachedAfter === undefined
      ? 'the bound was never reached (no 503)'
      : `${decimal(overload.redisMinMb)}–${decimal(overload.redisMaxMb)} MB`,
    overload && overload.redisFlat === true,
  )
  const flat = goals[goals.length - 1]
  if (flat && overload && overload.redisFlat === undefined) flat.verdict = 'no data'
  add(
    '4. every acknowledged point stored',
    'both stores',
    s4
      ? `${integer(s4.measurement.counted.postgres)} / ${integer(s4.measurement.counted.influx)} of ${integer(s4.measurement.load.acknowledgedPoints)}`
      : '',
    s4 && figuresOf(s4).everyAcknowledgedPointStored,
  )
  const s4Load = s4?.measurement.load
  add(
    '4. the gateway keeps answering: no timeouts, p99 < 1 s (202s and 503s)',
    '0, < 1,000 ms',
    `${integer(s4Load?.timeouts)} timeouts, ${decimal(s4Load?.latencyAccepted?.p99)} / ${decimal(s4Load?.latencyRefused?.p99)} ms`,
    s4Load &&
      s4Load.timeouts === 0 &&
      s4Load.socketErrors === 0 &&
      (s4Load.latencyAccepted?.p99 ?? 0) < 1000 &&
      (s4Load.latencyRefused?.p99 ?? 0) < 1000,
  )
  const fullSpeed = ratio(overload?.storedDuringOverload, s1?.storedBoth)
  add(
    '4. writers keep storing at full speed (vs scenario 1)',
    '≥ 0.9×',
    `${integer(overload?.storedDuringOverload)} points/s = ${decimal(fullSpeed, 2)}×`,
    fullSpeed === undefined ? undefined : fullSpeed >= 0.9,
  )
  // Run, but without the figure (no 503: never overloaded; scenario 1 not run): say so.
  const last = goals[goals.length - 1]
  if (last && last.verdict === 'not run' && s4 && s1) last.verdict = 'no data'
  const lineProtocolRatio = ratio(s6?.storedBoth, s1?.storedBoth)
  add(
    '6. line protocol stored, both stores (vs scenario 1, same run)',
    '≥ 1.0×',
    `${integer(s6?.storedBoth)} points/s = ${decimal(lineProtocolRatio, 2)}×`,
    lineProtocolRatio === undefined ? undefined : lineProtocolRatio >= 1,
  )
  const lineProtocolGoal = goals[goals.length - 1]
  if (lineProtocolGoal && s6 && !s1) lineProtocolGoal.verdict = 'no data' // scenario 1 not run
  const clusterRuns = results.filter((r) => r.id === ON_CLUSTER || r.id === ON_SINGLE_REDIS)
  const onCluster = clusterRuns.length ? alternationRatio(clusterRuns, CLUSTER_AGAINST_SINGLE) : undefined
  add(
    '10. scenario 1 on a Redis Cluster against a single Redis (stored, both stores, A/B/B/A)',
    `≥ ${CLUSTER_GOAL}×`,
    `${decimal(onCluster, 2)}×`,
    onCluster === undefined ? undefined : onCluster >= CLUSTER_GOAL,
  )
  const ours = results.filter((r) => r.system === 'IoTFlow')
  const peak = (name: string) =>
    ours.length ? Math.max(...ours.map((r) => r.measurement.peakRssMb.get(name) ?? 0)) : undefined
  const gatewayRss = peak('gateway')
  const writerRss = Math.max(peak('writer-postgres') ?? 0, peak('writer-influx') ?? 0)
  add(
    'gateway peak RSS, every scenario',
    '< 250 MB',
    `${integer(gatewayRss)} MB`,
    gatewayRss === undefined ? undefined : gatewayRss < 250,
  )
  add(
    'each writer peak RSS, every scenario',
    '< 300 MB',
    `${integer(writerRss)} MB`,
    ours.length ? writerRss < 300 : undefined,
  )
  const lost = ours.filter((r) => !figuresOf(r).everyAcknowledgedPointStored).map((r) => r.id)
  add(
    'every acknowledged point stored, every scenario',
    'both stores',
    lost.length ? `not in scenario ${lost.join(', ')}` : `scenarios ${ours.map((r) => r.id).join(', ')}`,
    ours.length ? lost.length === 0 : undefined,
  )
  return goals
}

export function printGoals(results: ScenarioResult[]): void {
  console.log('\n### Summary: the goals of issues 8, 14 and 19\n')
  console.log(
    markdownTable(
      ['goal', 'target', 'measured', 'result'],
      goalsOf(results).map((g) => [g.goal, g.target, g.measured, g.verdict]),
    ),
  )
}
