/**
 * The benchmark of issues 8 and 19: IoTFlow's apps as separate processes (as in production) against
 * the real PostgreSQL and InfluxDB, a private Redis, and for MQTT a private Mosquitto.
 *
 *   pnpm bench [--scenarios 1,6,2,3,4,5] [--seconds 60] [--overload-clients 100]
 *              [--overload-bound 200000] [--mqtt-rate 10000] [--device-rate 1000000|off] [--cpu-prof DIR]
 *              [--fixed-rates 1000,3000,5000]
 *              [--alert-seconds 30] [--partitions 6] [--cluster-replicas 0|1]
 *
 *   1. HTTP batches of 1,000 points from 50 concurrent clients
 *   2. HTTP single-point requests from 200 concurrent clients
 *   3. MQTT single-point QoS 1 messages from 200 device connections
 *   4. Overload: clients sending 1,000-point batches without pause, the gateway's backlog bound low
 *   5. The yardstick: scenarios 1 and 2 against a gateway that writes both stores in each request
 *      (each run right after the scenario it is compared with)
 *   6. Line protocol: gzipped 5,000-line bodies to /api/v2/write from 50 clients, as Telegraf sends
 *   7. Outside-style: a Node HTTP client, 16 clients, 1,000-point batches, run IoTFlow, yardstick,
 *      yardstick, IoTFlow (A/B/B/A), and the ratio of the sums
 *   8. Latency at fixed offered rates (1,000, 3,000, 5,000 single-point requests/s, open loop, from
 *      the Node client, after a 5 s warm-up at the same rate), IoTFlow then the yardstick at each rate
 *   9. Alerts: 50 rules over 1,000 devices at 20,000 points/s (paced, --alert-seconds long), four
 *      runs A/B/B/A: without the alert path (9.0: no rule, no evaluator), with it (9: the rules,
 *      an evaluator, a private Alertmanager); CPU per 1,000 points of each, and the p99 from the
 *      202 to Alertmanager holding the alert
 *  10. Scenario 1 on a private Redis Cluster (3 masters, --cluster-replicas replicas each, 0 by
 *      default), QUEUE_PARTITIONS=--partitions, against the single Redis: four runs A/B/B/A
 *      (single Redis, cluster, cluster, single Redis) and the ratio of the sums of stored points/s
 *
 * Scenarios run in the order --scenarios lists them, 5.1 and 5.2 right after 1 and 2: the default
 * runs 1, 5.1, 6, 2, 5.2, 3, 4, and `--scenarios 6,1` runs 6 before 1.
 * Each scenario prints a table (docs/benchmarks.md says how to read it), then a summary of the goals.
 * --cpu-prof DIR: each app writes a CPU profile (.cpuprofile, for Chrome DevTools) under DIR.
 * --device-rate: the apps' DEVICE_RATE_POINTS_PER_SECOND and DEVICE_RATE_BURST_POINTS. The default
 * 1,000,000 is far above what any bench device sends, so every request pays for the rate check and
 * none is refused (scenario 1 sends thousands of points a second per device, over the production
 * default of 1,000); `off` turns the check off, to measure its cost.
 * Everything it starts (processes, databases, Redis keys, files) is removed at the end, on failure
 * and on Ctrl-C. Talks only to 127.0.0.1.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { buildApps } from '../infra/build/build-apps.js'
import { type AlertScenarioResult, printAlertComparison, runAlertScenario } from './harness/alert-scenario.js'
import { startClusterBenchRedis, startSingleBenchRedis } from './harness/bench-redis.js'
import {
  CLUSTER_AGAINST_SINGLE,
  clusterRun,
  ON_CLUSTER,
  ON_SINGLE_REDIS,
} from './harness/cluster-scenario.js'
import type { BenchContext, ScenarioResult } from './harness/context.js'
import { printGoals } from './harness/goals.js'
import { type HttpScenario, runHttpOnIotflow, runHttpOnYardstick } from './harness/http-scenarios.js'
import { writeLineProtocolBodies } from './harness/line-protocol-bodies.js'
import { runMqttOnIotflow } from './harness/mqtt-scenario.js'
import { OUTSIDE_STYLE, printAlternation, printFixedRates } from './harness/outside-report.js'
import { printScenario, printYardstickComparison } from './harness/report.js'
import { settleMachine } from './harness/settle.js'
import { withTeardown } from './harness/teardown.js'
import { ensureWrk } from './harness/wrk.js'

const { values: args } = parseArgs({
  options: {
    scenarios: { type: 'string', default: '1,6,2,3,4,5' },
    seconds: { type: 'string', default: '60' },
    'overload-clients': { type: 'string', default: '100' },
    'overload-bound': { type: 'string', default: '200000' },
    'mqtt-rate': { type: 'string', default: '10000' },
    'fixed-rates': { type: 'string', default: '1000,3000,5000' },
    'device-rate': { type: 'string', default: '1000000' },
    'cpu-prof': { type: 'string' },
    'alert-seconds': { type: 'string', default: '30' },
    partitions: { type: 'string', default: '6' },
    'cluster-replicas': { type: 'string', default: '0' },
  },
})
// In the order given: the run order.
const selected = new Set(args.scenarios.split(',').map((s) => s.trim()))
const seconds = Number(args.seconds)
const overloadClients = Number(args['overload-clients'])
const overloadBound = Number(args['overload-bound'])
const mqttRate = Number(args['mqtt-rate'])
for (const id of selected)
  if (!['1', '2', '3', '4', '5', '6', '7', '8', '9', '10'].includes(id))
    fail(`unknown scenario ${id} (1 to 10)`)
const partitions = Number(args.partitions)
if (!Number.isInteger(partitions) || partitions < 1) fail('--partitions takes a whole number of at least 1')
const clusterReplicas = args['cluster-replicas']
if (clusterReplicas !== '0' && clusterReplicas !== '1') fail('--cluster-replicas takes 0 or 1')
const alertSeconds = Number(args['alert-seconds'])
if (!(alertSeconds >= 10)) fail('--alert-seconds must be at least 10')
if (!(seconds >= 1)) fail('--seconds must be at least 1')
if (!(overloadClients >= 1) || !(overloadBound >= 1) || !(mqttRate >= 0))
  fail('the options take positive numbers')
const deviceRate = args['device-rate'] === 'off' ? 0 : Number(args['device-rate'])
if (!(deviceRate >= 1) && args['device-rate'] !== 'off') fail('--device-rate takes points per second or off')
// The apps inherit this process's environment (spawnApp).
process.env.DEVICE_RATE_POINTS_PER_SECOND = String(deviceRate)
process.env.DEVICE_RATE_BURST_POINTS = String(Math.max(deviceRate, 1))

/** Scenario 6's lines per request: the issue's 5,000 (Telegraf's metric_batch_size is 1,000 by default). */
const LINES_PER_REQUEST = 5000
/** Line protocol bodies are prepared for this rate, ten times anything stored on the machine so far. */
const LINE_PROTOCOL_MAX_POINTS_PER_SECOND = 1_000_000
const LINE_PROTOCOL_CLIENTS = 50

/** Scenario 9 (issue 18). */
const ALERT_SCENARIO = {
  devices: 1000,
  rules: 50,
  pointsPerSecond: 20_000,
  periodMs: 5000,
  crossingEvery: 4,
}
/** Scenario 8's offered rates, single-point requests a second (`--fixed-rates`). */
const FIXED_RATES = args['fixed-rates'].split(',').map(Number)
if (!FIXED_RATES.every((rate) => rate >= 1)) fail('--fixed-rates takes requests/s, comma-separated')
const outsideStyle: HttpScenario = {
  id: '7',
  title: 'Outside-style: a Node HTTP client, 16 clients, batches of 1,000 points',
  clients: 16,
  pointsPerRequest: 1000,
  exact: true,
  nodeClient: {},
}
const fixedRate = (rate: number): HttpScenario => ({
  id: '8',
  title: `Fixed rate: ${rate.toLocaleString('en-US')} single-point requests/s on a schedule (Node client, up to 200 connections)`,
  clients: 200,
  pointsPerRequest: 1,
  exact: true,
  nodeClient: { rate },
})

const httpScenarios: Record<'1' | '2' | '4', HttpScenario> = {
  '1': {
    id: '1',
    title: 'HTTP batches of 1,000 points from 50 concurrent clients',
    clients: 50,
    pointsPerRequest: 1000,
    exact: false,
  },
  '2': {
    id: '2',
    title: 'HTTP single-point requests from 200 concurrent clients',
    clients: 200,
    pointsPerRequest: 1,
    exact: false,
  },
  '4': {
    id: '4',
    title: `Overload: ${overloadClients} clients sending 1,000-point batches without pause, BACKLOG_MAX_POINTS=${overloadBound}`,
    clients: overloadClients,
    pointsPerRequest: 1000,
    exact: true,
    env: { BACKLOG_MAX_POINTS: String(overloadBound) },
  },
}

try {
  await ensureWrk()
} catch (error) {
  fail((error as Error).message)
}

const failures: string[] = []
await withTeardown(async (teardown) => {
  const workDir = teardown.add('the work directory', await mkdtemp(join(tmpdir(), 'iotflow-bench-')), (dir) =>
    rm(dir, { recursive: true, force: true }),
  )
  // A Redis of the bench's own, configured as production (AOF every second, noeviction): its memory
  // is the pipeline's alone, whatever else runs on the shared one.
  const context: BenchContext = {
    teardown,
    redis: await startSingleBenchRedis(teardown),
    seconds,
    workDir,
    firstTimestampMs: Math.floor((Date.now() - 3_600_000) / 1000) * 1000,
    cpuProfileDir: args['cpu-prof'] ? resolve(args['cpu-prof']) : undefined,
  }
  const lineProtocolScenario = async (): Promise<HttpScenario> => ({
    id: '6',
    title: `Line protocol: gzipped ${LINES_PER_REQUEST.toLocaleString('en')}-line requests to /api/v2/write from ${LINE_PROTOCOL_CLIENTS} concurrent clients`,
    clients: LINE_PROTOCOL_CLIENTS,
    pointsPerRequest: LINES_PER_REQUEST,
    exact: false,
    lineProtocol: await writeLineProtocolBodies({
      dir: join(workDir, 'line-protocol'),
      count: Math.ceil(
        (LINE_PROTOCOL_MAX_POINTS_PER_SECOND * seconds) / LINE_PROTOCOL_CLIENTS / LINES_PER_REQUEST,
      ),
      linesPerBody: LINES_PER_REQUEST,
      firstTimestampMs: context.firstTimestampMs,
    }),
  })
  // Its bodies are compressed before any scenario settles the machine: not part of a measurement.
  const scenario6 = selected.has('6') ? await lineProtocolScenario() : undefined
  const results: ScenarioResult[] = []
  const fixedRateRuns: { rate: number; result: ScenarioResult }[] = []
  const run = async (
    id: string,
    scenario: () => Promise<ScenarioResult>,
    loadSeconds = seconds,
  ): Promise<ScenarioResult | undefined> => {
    if (teardown.stopping) return undefined
    const settled = await settleMachine(cpus().length)
    console.log(
      `\n… settled in ${(settled.waitedMs / 1000).toFixed(1)} s (machine ${Math.round(settled.busy * 100)}% busy)` +
        `; scenario ${id}: ${loadSeconds} s of load, then until both stores hold every point`,
    )
    try {
      const result = await scenario()
      results.push(result)
      printScenario(result)
      return result
    } catch (error) {
      if (teardown.stopping) return undefined // the signal stopped its processes: not a failure to report
      failures.push(id)
      console.error(`scenario ${id} failed: ${(error as Error).stack ?? error}`)
      return undefined
    }
  }

  console.log(
    `pnpm bench: scenarios ${[...selected].join(', ')}, ${seconds} s each, device rate limit ${deviceRate || 'off'} (figures: docs/benchmarks.md)`,
  )
  await buildApps() // the apps run as production runs them: their build
  // The yardstick runs right after the scenario it is compared with: the same machine at nearly
  // the same moment (what else runs on it changes the figures).
  const yardstick = selected.has('5')
  for (const id of selected) {
    if (id === '1' || id === '2' || id === '4')
      await run(id, () => runHttpOnIotflow(context, httpScenarios[id]))
    if ((id === '1' || id === '2') && yardstick)
      await run(`5.${id}`, () => runHttpOnYardstick(context, httpScenarios[id]))
    if (id === '3') await run('3', () => runMqttOnIotflow(context, { devices: 200, rate: mqttRate }))
    if (id === '6' && scenario6) await run('6', () => runHttpOnIotflow(context, scenario6))
    if (id === '7') {
      const order = [
        ['7', runHttpOnIotflow],
        ['5.7', runHttpOnYardstick],
        ['5.7', runHttpOnYardstick],
        ['7', runHttpOnIotflow],
      ] as const
      for (const [runId, runOn] of order) await run(runId, () => runOn(context, outsideStyle))
    }
    if (id === '8') {
      for (const rate of FIXED_RATES) {
        for (const [runId, runOn] of [
          ['8', runHttpOnIotflow],
          ['5.8', runHttpOnYardstick],
        ] as const) {
          const result = await run(runId, () => runOn(context, fixedRate(rate)))
          if (result) fixedRateRuns.push({ rate, result })
        }
      }
    }
    if (id === '9') {
      // A/B/B/A: what drifts on a shared machine during the four runs weighs on both sides alike.
      const alertContext = { ...context, seconds: alertSeconds }
      for (const alerts of [false, true, true, false])
        await run(
          alerts ? '9' : '9.0',
          () => runAlertScenario(alertContext, { ...ALERT_SCENARIO, alerts }),
          alertSeconds,
        )
      const runs = results.filter((r): r is AlertScenarioResult => r.id === '9' || r.id === '9.0')
      if (runs.length > 0 && !teardown.stopping) printAlertComparison(runs)
    }
    if (id === '10') {
      // The cluster lives through the four runs, so that the single Redis's runs pay for its idle
      // nodes as the cluster's do; it is removed after the last.
      const scope = teardown.scope('scenario 10')
      try {
        const cluster = await startClusterBenchRedis(scope, {
          partitions,
          replicasPerMaster: clusterReplicas === '1' ? 1 : 0,
        })
        const onCluster = { ...context, redis: cluster }
        for (const runId of [ON_SINGLE_REDIS, ON_CLUSTER, ON_CLUSTER, ON_SINGLE_REDIS] as const) {
          const where = runId === ON_CLUSTER ? onCluster : context
          const name = `${where.redis.name}${runId === ON_CLUSTER ? `, QUEUE_PARTITIONS=${partitions}` : ''}`
          await run(runId, () => runHttpOnIotflow(where, clusterRun(httpScenarios['1'], runId, name)))
        }
      } catch (error) {
        if (!teardown.stopping) {
          failures.push('10')
          console.error(`scenario 10 failed: ${(error as Error).stack ?? error}`)
        }
      } finally {
        await scope.run()
      }
      const runs = results.filter((r) => r.id === ON_CLUSTER || r.id === ON_SINGLE_REDIS)
      if (runs.length > 0 && !teardown.stopping) printAlternation(runs, CLUSTER_AGAINST_SINGLE)
    }
    // Listed without its scenario: the yardstick's runs alone.
    if (id === '5') {
      for (const compared of ['1', '2'] as const)
        if (!selected.has(compared))
          await run(`5.${compared}`, () => runHttpOnYardstick(context, httpScenarios[compared]))
    }
  }
  const pairs = (['1', '2'] as const).flatMap((id) => {
    const ours = results.find((r) => r.id === id)
    const theirs = results.find((r) => r.id === `5.${id}`)
    return ours && theirs ? [[ours, theirs] as [ScenarioResult, ScenarioResult]] : []
  })
  if (pairs.length && !teardown.stopping) printYardstickComparison(pairs)
  const alternation = results.filter((r) => r.id === '7' || r.id === '5.7')
  if (alternation.length && !teardown.stopping) printAlternation(alternation, OUTSIDE_STYLE)
  if (fixedRateRuns.length && !teardown.stopping) printFixedRates(fixedRateRuns)
  if (!teardown.stopping) printGoals(results)
})
if (failures.length) {
  console.error(`\nscenario(s) ${failures.join(', ')} failed (see above)`)
  process.exit(1)
}

function fail(message: string): never {
  console.error(message)
  process.exit(2)
}
