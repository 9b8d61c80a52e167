import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { bullPrefix, queueCatalog } from '@iotflow/queue'
import { registerDeviceOverHttp, startPrivateAlertmanager } from '@iotflow/testkit'
import { mapLimit } from '../simulator/fleet.js'
import { createHttpSender } from '../simulator/http-sender.js'
import { percentile } from '../simulator/tally.js'
import { type BenchContext, cpuProfileArgs, type ScenarioResult } from './context.js'
import { figuresOf } from './figures.js'
import { drainTimeoutMs, iotflowProbes, SHARED_SERVERS } from './http-scenarios.js'
import { ADMIN_TOKEN, type IotflowApps, startIotflow } from './iotflow-apps.js'
import { decimal, integer, markdownTable } from './markdown-table.js'
import type { LoadOutcome } from './measure.js'
import { measure } from './measure.js'
import { type BenchStores, createBenchStores } from './stores.js'

/** Scenario 9's shape (issue 18): 50 rules over 1,000 devices at 20,000 points/s. */
export interface AlertScenario {
  devices: number
  rules: number
  pointsPerSecond: number
  /** Each device sends one request this often (its points spread over the period before it). */
  periodMs: number
  /** Every `crossingEvery`-th device crosses its rule's threshold once during the load. */
  crossingEvery: number
  /** With the alert path: the rules, an evaluator and a private Alertmanager; without: none of them. */
  alerts: boolean
}

/** The rule's threshold, and the values a device sends under and over it. */
const THRESHOLD = 50
const UNDER = 20
const OVER = 60
const ALERTMANAGER = 'alertmanager (private)'
/** How often Alertmanager is asked which alerts it holds (the resolution of the latency figure). */
const ALERTMANAGER_POLL_MS = 50

export interface AlertFigures {
  /** Crossings sent, and how many Alertmanager held before the poll gave up. */
  crossings: number
  held: number
  /** From the 202 of the request that carried the crossing to Alertmanager holding the alert, ms. */
  p50?: number
  p99?: number
  max?: number
  /** The same time in stages (alertLatencyStages), p50 and p99 ms each. */
  stages: { stage: string; p50?: number; p99?: number }[]
}

/** When each crossing's firing transition was judged and its Alertmanager delivery queued, started, done. */
interface CrossingTimes {
  judged: number
  queued: number
  started: number
  delivered: number
}

export type AlertScenarioResult = ScenarioResult & { alerting?: AlertFigures }

/**
 * Scenario 9: a paced fleet (the simulator's HTTP sender, in this process) of `devices` devices,
 * each sending `pointsPerSecond / devices` points a second in one request per `periodMs`. Rule k
 * (`temperature > 50`) watches the devices whose index is k modulo `rules`; every
 * `crossingEvery`-th device sends a value over the threshold from a moment spread over the load on,
 * and Alertmanager's /api/v2/alerts is read every 50 ms to time when it holds each alert. Without
 * the alert path the same load runs on a pipeline with no rule and no evaluator (so no fan-out).
 */
export async function runAlertScenario(
  context: BenchContext,
  scenario: AlertScenario,
): Promise<AlertScenarioResult> {
  const id = scenario.alerts ? '9' : '9.0'
  const scope = context.teardown.scope(`scenario ${id}`)
  let iotflow: IotflowApps | undefined
  try {
    const stores = await createBenchStores(scope)
    let alertmanager: Awaited<ReturnType<typeof startPrivateAlertmanager>> | undefined
    if (scenario.alerts) {
      // Alertmanager's notifications go to a sink that answers 200: routing is not measured.
      const sink = createServer((request, response) => {
        request.resume()
        request.on('end', () => response.writeHead(200).end())
      })
      await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve))
      scope.add('the notification sink', sink, (server) => new Promise((resolve) => server.close(resolve)))
      const webhookUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/`
      alertmanager = scope.add('Alertmanager', await startPrivateAlertmanager({ webhookUrl }), (am) =>
        am.dispose(),
      )
    }
    iotflow = await startIotflow(scope, {
      redis: context.redis,
      stores,
      alertEvaluator: scenario.alerts,
      // The cost of a point is measured, not shedding (scenario 4's): on a busy shared machine the
      // gateway's 200 ms shedding would refuse part of the 20,000 points/s, differently each run.
      env: {
        INGEST_SHED_AFTER_MS: '0',
        ...(alertmanager && { ALERTMANAGER_URL: alertmanager.url }),
      },
      nodeArgs: (app) => cpuProfileArgs(context, id, app),
    })
    const gatewayUrl = iotflow.gatewayUrl
    const devices = await mapLimit(range(scenario.devices), 16, (i) =>
      registerDeviceOverHttp(gatewayUrl, ADMIN_TOKEN, `bench-${id}-${String(i).padStart(5, '0')}`),
    )
    if (scenario.alerts) {
      for (let k = 0; k < scenario.rules; k++) {
        const response = await fetch(`${gatewayUrl}/api/v1/alert-rules`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            name: `bench too hot ${k}`,
            field: 'temperature',
            condition: '>',
            threshold: THRESHOLD,
            device_ids: devices.filter((_, i) => i % scenario.rules === k).map((d) => d.id),
          }),
        })
        if (response.status !== 201) throw new Error(`rule ${k}: ${response.status} ${await response.text()}`)
      }
    }
    const apps = iotflow
    const processes = [...apps.apps.map(({ name, pid }) => ({ name, pid })), ...context.redis.processes()]
    const alertmanagerPid = alertmanager?.pid()
    if (alertmanagerPid !== undefined)
      processes.push({ name: 'alertmanager (private)', pid: alertmanagerPid })
    let finishAlerting:
      | ((times: () => Promise<Map<string, CrossingTimes>>) => Promise<AlertFigures>)
      | undefined
    const measurement = await measure({
      stores,
      processes,
      servers: SHARED_SERVERS,
      probes: iotflowProbes(context, apps),
      load: async (started) => {
        const run = await pacedLoad(context, scenario, gatewayUrl, devices, started, alertmanager?.url)
        finishAlerting = run.finishAlerting
        return run.load
      },
      progress: () => apps.drainProgress('http'),
      drainTimeoutMs: drainTimeoutMs(context.seconds),
    })
    // Alertmanager is read during the drain too; the last crossings are waited for after it.
    const alerting = await finishAlerting?.(() =>
      crossingTimes(stores.postgres.sql, context.redis.connection, apps.queuePrefix),
    )
    const title =
      `Alerts: ${scenario.rules} rules over ${scenario.devices.toLocaleString('en')} devices at ` +
      `${scenario.pointsPerSecond.toLocaleString('en')} points/s, ${scenario.alerts ? 'with' : 'without'} the alert path`
    return { id, title, system: 'IoTFlow', unit: 'request', measurement, ...(alerting && { alerting }) }
  } catch (error) {
    if (iotflow && !context.teardown.stopping) console.error(`the apps' last output:\n${iotflow.output()}`)
    throw error
  } finally {
    await scope.run()
  }
}

/**
 * Sends the fleet's load for `context.seconds`, paced: device i's requests go out at
 * `start + (i / devices + n) * periodMs`, each with the points of the period before it (timestamps
 * 1/rate apart, never repeated). With an Alertmanager, also times each crossing until it holds it
 * (or 30 s after the load). A crossing whose request was not answered 202 is not timed.
 */
async function pacedLoad(
  context: BenchContext,
  scenario: AlertScenario,
  gatewayUrl: string,
  devices: { id: number; apiKey: string }[],
  started: () => void,
  alertmanagerUrl: string | undefined,
): Promise<{
  load: LoadOutcome
  finishAlerting?: (times: () => Promise<Map<string, CrossingTimes>>) => Promise<AlertFigures>
}> {
  // Connections enough that requests do not queue in the sender while the gateway answers slowly.
  const sender = createHttpSender(gatewayUrl, 256)
  const pointsPerRequest = Math.round(
    (scenario.pointsPerSecond * scenario.periodMs) / 1000 / scenario.devices,
  )
  const spacingMs = scenario.periodMs / pointsPerRequest
  const durationMs = context.seconds * 1000
  // Crossing devices and the moment from which each sends values over the threshold.
  const crossAt = new Map<number, number>()
  for (let i = 0; i < devices.length; i += scenario.crossingEvery)
    crossAt.set(i, 2_000 + ((durationMs - 6_000) * i) / devices.length)
  const acknowledgedAt = new Map<number, number>()
  const statuses: Record<string, number> = {}
  const latencies: number[] = []
  let sent = 0
  let acknowledged = 0
  let socketErrors = 0
  const cpuBefore = process.cpuUsage()
  const poller = alertmanagerUrl ? startAlertPoller(alertmanagerUrl, devices) : undefined
  const start = Date.now()
  started()
  const inFlight = new Set<Promise<void>>()
  const next = devices.map((_, i) => (i / devices.length) * scenario.periodMs)
  const lastT = devices.map(() => context.firstTimestampMs)
  for (;;) {
    const now = Date.now() - start
    if (now >= durationMs) break
    for (let i = 0; i < devices.length; i++) {
      if ((next[i] as number) > now) continue
      next[i] = (next[i] as number) + scenario.periodMs
      const device = devices[i] as { id: number; apiKey: string }
      const over = crossAt.has(i) && now >= (crossAt.get(i) as number)
      const crossing = over && !acknowledgedAt.has(i)
      const points = Array.from({ length: pointsPerRequest }, (_, k) => {
        // Never behind the device's last timestamp, so no point merges with another.
        const t = Math.max(
          (lastT[i] as number) + 1,
          Math.round(start + now - (pointsPerRequest - k) * spacingMs),
        )
        lastT[i] = t
        // A crossing request ends with the first value over the threshold.
        const hot = over && (!crossing || k === pointsPerRequest - 1)
        return { timestamp: t, data: { temperature: hot ? OVER : UNDER + (k % 5), humidity: 40 + (k % 7) } }
      })
      if (crossing) acknowledgedAt.set(i, Number.NaN)
      sent++
      const requestStart = performance.now()
      const request = sender.send(device.apiKey, JSON.stringify({ points })).then((outcome) => {
        statuses[String(outcome.status)] = (statuses[String(outcome.status)] ?? 0) + 1
        if (typeof outcome.status !== 'number') socketErrors++
        if (outcome.status !== 202) return
        acknowledged++
        latencies.push(performance.now() - requestStart)
        if (crossing) acknowledgedAt.set(i, Date.now())
      })
      inFlight.add(request)
      void request.finally(() => inFlight.delete(request))
    }
    await sleep(5)
  }
  const loadSeconds = (Date.now() - start) / 1000
  await Promise.all(inFlight)
  sender.close()
  const cpu = process.cpuUsage(cpuBefore)
  latencies.sort((a, b) => a - b)
  return {
    load: {
      seconds: loadSeconds,
      sent,
      acknowledged,
      acknowledgedPoints: acknowledged * pointsPerRequest,
      pointsPerMessage: pointsPerRequest,
      acknowledgedAs: '202',
      statuses,
      timeouts: 0,
      socketErrors,
      latency: {
        count: latencies.length,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        max: latencies[latencies.length - 1],
      },
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
    },
    ...(poller && {
      finishAlerting: (times: () => Promise<Map<string, CrossingTimes>>) =>
        poller.finish(acknowledgedAt, 30_000, times),
    }),
  }
}

/**
 * Reads Alertmanager's alerts every 50 ms from the start of the load: the first read that shows a
 * device's alert is when Alertmanager held it. `finish` keeps reading until it holds one for every
 * crossing acknowledged (or `timeoutMs` passed), then gives each crossing's latency from its 202.
 */
function startAlertPoller(alertmanagerUrl: string, devices: { id: number }[]) {
  const byDeviceId = new Map(devices.map((d, i) => [String(d.id), i]))
  const heldAt = new Map<number, number>()
  let stopped = false
  const polling = (async () => {
    while (!stopped) {
      const response = await fetch(`${alertmanagerUrl}/api/v2/alerts?active=true`).catch(() => undefined)
      const now = Date.now()
      const alerts = response?.ok ? ((await response.json()) as { labels: Record<string, string> }[]) : []
      for (const alert of alerts) {
        const index = byDeviceId.get(alert.labels.device_id ?? '')
        if (index !== undefined && !heldAt.has(index)) heldAt.set(index, now)
      }
      await sleep(ALERTMANAGER_POLL_MS)
    }
  })()
  return {
    async finish(
      acknowledgedAt: Map<number, number>,
      timeoutMs: number,
      times: () => Promise<Map<string, CrossingTimes>>,
    ): Promise<AlertFigures> {
      const giveUpAt = Date.now() + timeoutMs
      while (heldAt.size < acknowledgedAt.size && Date.now() < giveUpAt) await sleep(ALERTMANAGER_POLL_MS)
      stopped = true
      await polling
      const latencies = [...acknowledgedAt]
        .map(([index, acknowledged]) => (heldAt.get(index) ?? Number.NaN) - acknowledged)
        .filter((ms) => Number.isFinite(ms))
        .sort((a, b) => a - b)
      const byDevice = await times()
      const stages = alertLatencyStages(
        [...acknowledgedAt].map(([index, acknowledged]) => ({
          acknowledged,
          held: heldAt.get(index) ?? Number.NaN,
          ...byDevice.get(String(devices[index]?.id)),
        })),
      )
      return {
        crossings: acknowledgedAt.size,
        held: [...acknowledgedAt.keys()].filter((index) => heldAt.has(index)).length,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        max: latencies[latencies.length - 1],
        stages,
      }
    },
  }
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/**
 * Per device, its first firing transition's times: judged (the transaction's start, PostgreSQL's
 * `recorded_at`), and its Alertmanager delivery job's queued, started and finished (BullMQ's
 * timestamp, processedOn, finishedOn), all epoch ms on this machine's clock.
 */
async function crossingTimes(
  sql: BenchStores['postgres']['sql'],
  redis: BenchContext['redis']['connection'],
  queuePrefix: string,
): Promise<Map<string, CrossingTimes>> {
  const rows = await sql<{ id: string; device_id: number; judged: number }[]>`
    SELECT DISTINCT ON (device_id) id::text, device_id, extract(epoch FROM recorded_at) * 1000 AS judged
    FROM alert_transitions WHERE to_state = 'firing' ORDER BY device_id, id`
  const times = new Map<string, CrossingTimes>()
  const retried: string[] = []
  for (const row of rows) {
    const key = `${bullPrefix(queuePrefix)}:${queueCatalog.alertDeliver.name}:transition-${row.id}`
    const fields = await redis.hmget(key, 'timestamp', 'processedOn', 'finishedOn', 'ats', 'failedReason')
    const [queued, started, delivered, attempts] = fields.map(Number)
    // The stage "queued → started" of a retried delivery ends at its last attempt.
    if ((attempts as number) > 1) retried.push(fields[4] ?? '')
    times.set(String(row.device_id), {
      judged: Number(row.judged),
      queued: queued as number,
      started: started as number,
      delivered: delivered as number,
    })
  }
  if (retried.length > 0)
    console.log(
      `${retried.length} of ${rows.length} Alertmanager deliveries were retried; last failures: ${[...new Set(retried)].join('; ')}`,
    )
  return times
}

/** The stages from the 202 to Alertmanager holding the alert: name, the time it starts at, the time it ends at. */
const ALERT_STAGES = [
  ['202 → judged (transaction began)', 'acknowledged', 'judged'],
  ['judged → delivery queued', 'judged', 'queued'],
  ['queued → delivery started', 'queued', 'started'],
  ['started → posted to Alertmanager', 'started', 'delivered'],
  ['posted → seen by the 50 ms poll', 'delivered', 'held'],
] as const

/** p50 and p99 of each stage from the 202 to Alertmanager holding the alert (bench poll included). */
function alertLatencyStages(crossings: (Partial<CrossingTimes> & { acknowledged: number; held: number })[]) {
  return ALERT_STAGES.map(([stage, from, to]) => {
    const ms = crossings
      .map((c) => (c[to] ?? Number.NaN) - (c[from] ?? Number.NaN))
      .filter(Number.isFinite)
      .sort((x, y) => x - y)
    return { stage, p50: percentile(ms, 50), p99: percentile(ms, 99) }
  })
}

/**
 * Scenario 9's comparison: each run's CPU per 1,000 points stored (our processes: the apps, the
 * private Redis and Alertmanager; and apart, the shared PostgreSQL server's, which the evaluator's
 * states also use), then the two sides' means and the latency of the alerts.
 */
export function printAlertComparison(runs: AlertScenarioResult[]): void {
  const perThousand = (seconds: number, points: number) => (points > 0 ? (seconds * 1e6) / points : undefined)
  const rows = runs.map((run, n) => {
    const f = figuresOf(run)
    const m = run.measurement
    const cpuOf = (name: string) => m.cpu.processes.get(name) ?? 0
    const alertmanager = cpuOf(ALERTMANAGER)
    // IoTFlow's processes and its Redis; Alertmanager apart (the bench reads it every 50 ms).
    const iotflow = f.systemCpuSeconds - alertmanager
    const postgresServer = m.cpu.servers.get('postgres (shared server)') ?? 0
    const points = m.counted.postgres
    const a = run.alerting
    return {
      alerts: run.id === '9',
      ours: perThousand(iotflow, points),
      withAlertmanager: perThousand(f.systemCpuSeconds, points),
      postgres: perThousand(postgresServer, points),
      cells: [
        String(n + 1),
        run.id === '9' ? 'with' : 'without',
        integer(f.acceptedPointsPerSecond),
        integer(points),
        decimal(iotflow),
        decimal(cpuOf('alert-evaluator')),
        decimal(perThousand(iotflow, points)),
        decimal(perThousand(alertmanager, points)),
        decimal(perThousand(postgresServer, points)),
        a ? `${a.held} / ${a.crossings}` : '–',
        a ? `${integer(a.p50)} / ${integer(a.p99)} / ${integer(a.max)}` : '–',
      ],
    }
  })
  console.log(
    `\n${markdownTable(
      [
        'run',
        'alert path',
        'accepted points/s',
        'points stored',
        'IoTFlow CPU s (apps, Redis)',
        'of which evaluator',
        'IoTFlow CPU ms per 1,000 points',
        'Alertmanager CPU ms per 1,000 points',
        'PostgreSQL server CPU ms per 1,000 points',
        'alerts held / crossings',
        '202 → Alertmanager holds it, p50 / p99 / max ms',
      ],
      rows.map((r) => r.cells),
    )}`,
  )
  const mean = (alerts: boolean, pick: (r: (typeof rows)[number]) => number | undefined) => {
    const values = rows.filter((r) => r.alerts === alerts).map(pick)
    if (values.length === 0 || values.some((v) => v === undefined)) return undefined
    return (values as number[]).reduce((a, b) => a + b, 0) / values.length
  }
  const ratio = (pick: (r: (typeof rows)[number]) => number | undefined) => {
    const [without, withAlerts] = [mean(false, pick), mean(true, pick)]
    return without && withAlerts ? withAlerts / without : undefined
  }
  const ours = ratio((r) => r.ours)
  const withAll = ratio((r) => (r.withAlertmanager ?? 0) + (r.postgres ?? 0))
  const p99s = runs.flatMap((r) => (r.alerting?.p99 === undefined ? [] : [r.alerting.p99]))
  console.log(
    `\nscenario 9: IoTFlow's CPU per 1,000 points with the alert path ${decimal(ours, 3)}× without it (goal: at most 1.10×); ` +
      `with Alertmanager's and the shared PostgreSQL server's CPU ${decimal(withAll, 3)}×; ` +
      `p99 from the 202 to Alertmanager holding the alert ${p99s.map((p) => `${integer(p)} ms`).join(', ') || '–'} (goal: under 2,000 ms)`,
  )
  const withAlerts = runs.flatMap((run, n) =>
    run.alerting ? [{ n: n + 1, stages: run.alerting.stages }] : [],
  )
  if (withAlerts.length === 0) return
  console.log(
    `\n${markdownTable(
      ['stage, p50 / p99 ms', ...withAlerts.map(({ n }) => `run ${n}`)],
      (withAlerts[0]?.stages ?? []).map((s, i) => [
        s.stage,
        ...withAlerts.map(({ stages }) => `${integer(stages[i]?.p50)} / ${integer(stages[i]?.p99)}`),
      ]),
    )}`,
  )
}
