import { join } from 'node:path'
import { createDevicesRepository } from '@iotflow/db'
import { registerDeviceOverHttp } from '@iotflow/testkit'
import { deviceName, mapLimit, type SimulatedDevice, writeDevicesFile } from '../simulator/fleet.js'
import { type BenchContext, cpuProfileArgs, type ScenarioResult } from './context.js'
import { ADMIN_TOKEN, type IotflowApps, startIotflow } from './iotflow-apps.js'
import type { LineProtocolBodies } from './line-protocol-bodies.js'
import { type LoadOutcome, measure } from './measure.js'
import { runNodeLoad } from './node-client.js'
import type { Probe, WatchedServer } from './sampler.js'
import { createBenchStores } from './stores.js'
import type { Teardown } from './teardown.js'
import { runWrk } from './wrk.js'
import { startYardstick } from './yardstick.js'

/** An HTTP scenario: how many clients (each its own device and key), how many points a request. */
export interface HttpScenario {
  id: string
  title: string
  clients: number
  pointsPerRequest: number
  /**
   * One wrk thread per client: exact latency per status and Retry-After per connection, at more
   * CPU per request (fine for few large requests, not for 200 clients of single points).
   */
  exact: boolean
  /** More environment for the apps. */
  env?: Record<string, string>
  /**
   * Line protocol to `/api/v2/write` (these bodies, answered 204) instead of JSON to
   * `/api/v1/telemetry` (answered 202); `pointsPerRequest` is then the lines of a body.
   */
  lineProtocol?: LineProtocolBodies
  /**
   * The Node HTTP client (node-load.ts) instead of wrk, as an outside measurement would load it:
   * `clients` in a closed loop, or with `rate`, that many requests a second on a fixed schedule.
   */
  nodeClient?: { rate?: number }
}

/** The shared servers whose CPU a scenario reports (all their processes, whoever else uses them). */
export const SHARED_SERVERS: WatchedServer[] = [
  { name: 'postgres (shared server)', comm: 'postgres' },
  { name: 'influxd (shared server)', comm: 'influxd' },
]

/** Give up waiting for the stores: long enough for a backlog of the whole run to drain. */
export const drainTimeoutMs = (seconds: number) => Math.min(900_000, 120_000 + seconds * 5_000)

/** Points accepted, stored per store, and Redis memory, read every second while IoTFlow runs. */
export function iotflowProbes(context: BenchContext, iotflow: IotflowApps): Probe[] {
  return [
    { name: 'redis used_memory', read: () => context.redis.usedMemory() },
    { name: 'stored postgres', read: async () => (await iotflow.storedPoints()).postgres },
    { name: 'stored influx', read: async () => (await iotflow.storedPoints()).influx },
    // 503s by cause: the backlog bound, or the gateway shedding load (INGEST_SHED_AFTER_MS).
    { name: 'backlog refusals', read: () => iotflow.refusedRequests('backlog') },
    { name: 'shed refusals', read: () => iotflow.refusedRequests('overloaded') },
  ]
}

/** A scenario against IoTFlow: the apps as processes, devices registered through the admin API. */
export async function runHttpOnIotflow(
  context: BenchContext,
  scenario: HttpScenario,
): Promise<ScenarioResult> {
  const scope = context.teardown.scope(`scenario ${scenario.id}`)
  let iotflow: IotflowApps | undefined
  try {
    const stores = await createBenchStores(scope)
    iotflow = await startIotflow(scope, {
      redis: context.redis,
      stores,
      env: scenario.env,
      nodeArgs: (app) => cpuProfileArgs(context, scenario.id, app),
    })
    const gatewayUrl = iotflow.gatewayUrl
    const devices = await mapLimit(range(scenario.clients), 16, async (i) => {
      const name = deviceName(`bench-${scenario.id}`, i)
      return { name, ...(await registerDeviceOverHttp(gatewayUrl, ADMIN_TOKEN, name)) }
    })
    const devicesFile = await devicesFileOf(context, scenario, gatewayUrl, devices)
    const apps = iotflow
    const measurement = await measure({
      stores,
      processes: [...apps.apps.map(({ name, pid }) => ({ name, pid })), ...context.redis.processes()],
      servers: SHARED_SERVERS,
      probes: iotflowProbes(context, apps),
      load: (started) => wrkLoad(context, scope, scenario, gatewayUrl, devicesFile, started),
      progress: () => apps.drainProgress('http'),
      drainTimeoutMs: drainTimeoutMs(context.seconds),
    })
    return { id: scenario.id, title: scenario.title, system: 'IoTFlow', unit: 'request', measurement }
  } catch (error) {
    if (iotflow && !context.teardown.stopping) console.error(`the apps' last output:\n${iotflow.output()}`)
    throw error
  } finally {
    await scope.run()
  }
}

/** The same scenario against the yardstick, with the same load generator and the same load. */
export async function runHttpOnYardstick(
  context: BenchContext,
  scenario: HttpScenario,
): Promise<ScenarioResult> {
  const scope = context.teardown.scope(`scenario 5 (${scenario.id})`)
  try {
    const stores = await createBenchStores(scope)
    const repository = createDevicesRepository(stores.postgres.sql)
    const devices = await mapLimit(range(scenario.clients), 16, async (i) => {
      const name = deviceName(`bench-${scenario.id}`, i)
      const { device, apiKey } = await repository.create({ name })
      return { id: device.id, apiKey, name }
    })
    const devicesFile = await devicesFileOf(
      context,
      { ...scenario, id: `5.${scenario.id}` },
      'yardstick',
      devices,
    )
    const yardstick = await startYardstick(
      scope,
      stores,
      devicesFile,
      cpuProfileArgs(context, `5.${scenario.id}`, 'yardstick'),
    )
    const measurement = await measure({
      stores,
      processes: [{ name: 'yardstick', pid: yardstick.process.pid }],
      servers: SHARED_SERVERS,
      probes: [],
      load: (started) => wrkLoad(context, scope, scenario, yardstick.url, devicesFile, started),
      progress: async () => {
        const stats = await yardstick.stats()
        return {
          acknowledged: stats.answered_points,
          postgres: stats.postgres_points,
          influx: stats.influx_points,
          pending: stats.in_flight,
        }
      },
      drainTimeoutMs: drainTimeoutMs(context.seconds),
    })
    if ((await yardstick.stats()).failures > 0) console.error(yardstick.process.output())
    return {
      id: `5.${scenario.id}`,
      title: `yardstick: ${scenario.title}`,
      system: 'yardstick',
      unit: 'request',
      measurement,
    }
  } finally {
    await scope.run()
  }
}

async function devicesFileOf(
  context: BenchContext,
  scenario: { id: string },
  gatewayUrl: string,
  devices: SimulatedDevice[],
): Promise<string> {
  const file = join(context.workDir, `scenario-${scenario.id}-devices.txt`)
  await writeDevicesFile(file, gatewayUrl, devices)
  return file
}

async function wrkLoad(
  context: BenchContext,
  teardown: Teardown,
  scenario: HttpScenario,
  baseUrl: string,
  devicesFile: string,
  started: () => void,
): Promise<LoadOutcome> {
  started()
  const load = {
    url: `${baseUrl}${scenario.lineProtocol ? '/api/v2/write' : '/api/v1/telemetry'}`,
    devicesFile,
    connections: scenario.clients,
    pointsPerRequest: scenario.pointsPerRequest,
    firstTimestampMs: context.firstTimestampMs,
    seconds: context.seconds,
  }
  const report = scenario.nodeClient
    ? await runNodeLoad({ ...load, rate: scenario.nodeClient.rate }, teardown)
    : await runWrk({ ...load, exact: scenario.exact, bodies: scenario.lineProtocol }, teardown)
  if (report.bodies_exhausted > 0) {
    throw new Error(
      `wrk ran out of prepared line protocol bodies (${report.bodies_exhausted} requests not sent): prepare more (bench.ts)`,
    )
  }
  const acknowledgedAs = scenario.lineProtocol ? '204' : '202'
  const acknowledged = report.statuses[acknowledgedAs] ?? 0
  return {
    seconds: report.duration_ms / 1000,
    sent: report.requests,
    acknowledged,
    acknowledgedPoints: acknowledged * scenario.pointsPerRequest,
    pointsPerMessage: scenario.pointsPerRequest,
    acknowledgedAs,
    statuses: report.statuses,
    timeouts: report.errors.timeout,
    socketErrors: report.errors.connect + report.errors.read + report.errors.write,
    latency: report.latency_ms,
    latencyAccepted: report.by_status_ms?.accepted,
    latencyRefused: report.by_status_ms?.refused,
    latencyWarmUp: report.warm_up_ms,
    firstRefusalEpochMs: report.first_refusal_epoch_ms,
    cpuSeconds: report.cpu_seconds,
  }
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i)
