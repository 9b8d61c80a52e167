import { join } from 'node:path'
import { registerDeviceOverHttp, startPrivateMosquitto } from '@iotflow/testkit'
import { spawnNode } from '../../test/support/app-process.js'
import { deviceName, mapLimit, writeDevicesFile } from '../simulator/fleet.js'
import { type BenchContext, cpuProfileArgs, type ScenarioResult } from './context.js'
import { drainTimeoutMs, iotflowProbes, SHARED_SERVERS } from './http-scenarios.js'
import { ADMIN_TOKEN, type IotflowApps, startIotflow } from './iotflow-apps.js'
import { type LoadOutcome, measure } from './measure.js'
import { stopProcess } from './stop-process.js'
import { createBenchStores } from './stores.js'
import type { Teardown } from './teardown.js'

export interface MqttScenario {
  devices: number
  /** Messages per second offered over all devices (single-point messages); 0: as fast as PUBACKed. */
  rate: number
}

/** What `pnpm simulate --json` prints at the end. */
interface SimulationSummary {
  seconds: number
  sent: number
  accepted: number
  refused: Record<string, number>
  refused_by_bridge: Record<string, number>
  missed: number
  latency_ms: { p50?: number; p99?: number; max?: number }
  cpu_seconds: number
}

/**
 * Scenario 3: single-point QoS 1 messages from one connection per device, published by the device
 * simulator (a process of its own) to a private Mosquitto, through the bridge and both writers.
 * Latency is publish → PUBACK (the broker's); stored is measured until both stores hold them all.
 */
export async function runMqttOnIotflow(
  context: BenchContext,
  scenario: MqttScenario,
): Promise<ScenarioResult> {
  const scope = context.teardown.scope('scenario 3')
  let iotflow: IotflowApps | undefined
  try {
    const stores = await createBenchStores(scope)
    const broker = scope.add('the private Mosquitto', await startPrivateMosquitto(), (b) => b.dispose())
    iotflow = await startIotflow(scope, {
      redis: context.redis,
      stores,
      mqttUrl: broker.url,
      nodeArgs: (app) => cpuProfileArgs(context, '3', app),
    })
    const apps = iotflow
    const devices = await mapLimit(Array.from({ length: scenario.devices }), 16, async (_, i) => {
      const name = deviceName('bench-3', i) // the simulator's names: it reuses these devices
      return { name, ...(await registerDeviceOverHttp(apps.gatewayUrl, ADMIN_TOKEN, name)) }
    })
    const devicesFile = join(context.workDir, 'scenario-3-devices.txt')
    await writeDevicesFile(devicesFile, apps.gatewayUrl, devices)
    const brokerPid = broker.pid()
    const measurement = await measure({
      stores,
      processes: [
        ...apps.apps.map(({ name, pid }) => ({ name, pid })),
        ...context.redis.processes(),
        ...(brokerPid === undefined ? [] : [{ name: 'mosquitto (private)', pid: brokerPid }]),
      ],
      servers: SHARED_SERVERS,
      probes: iotflowProbes(context, apps),
      load: (started) =>
        simulatorLoad(scope, started, [
          '--transport=mqtt',
          `--mqtt-url=${broker.url}`,
          `--url=${apps.gatewayUrl}`,
          `--admin-token=${ADMIN_TOKEN}`,
          `--devices-file=${devicesFile}`,
          `--devices=${scenario.devices}`,
          `--name-prefix=bench-3`,
          `--rate=${scenario.rate}`,
          `--seconds=${context.seconds}`,
          '--json',
        ]),
      progress: () => apps.drainProgress('mqtt'),
      drainTimeoutMs: drainTimeoutMs(context.seconds),
    })
    return {
      id: '3',
      title: `MQTT single-point QoS 1 messages from ${scenario.devices} device connections`,
      system: 'IoTFlow',
      unit: 'message',
      measurement,
    }
  } catch (error) {
    if (iotflow && !context.teardown.stopping) console.error(`the apps' last output:\n${iotflow.output()}`)
    throw error
  } finally {
    await scope.run()
  }
}

async function simulatorLoad(teardown: Teardown, started: () => void, args: string[]): Promise<LoadOutcome> {
  let summary: SimulationSummary | undefined
  const simulator = teardown.add(
    'the simulator',
    spawnNode(
      'simulator',
      'bench/simulate.ts',
      {},
      {
        args,
        onLine: (line) => {
          if (line === 'SIMULATION_STARTED') started()
          if (line.startsWith('SIMULATION_RESULT '))
            summary = JSON.parse(line.slice('SIMULATION_RESULT '.length))
        },
      },
    ),
    stopProcess,
  )
  const { code } = await simulator.exited
  if (!summary) throw new Error(`the simulator exited with ${code}:\n${simulator.output()}`)
  // Refused by the bridge (answered on the device's errors topic) and PUBACKed all the same: never stored.
  const refusedByBridge = Object.values(summary.refused_by_bridge).reduce((a, b) => a + b, 0)
  if (refusedByBridge > 0) {
    console.error(
      `the bridge refused ${refusedByBridge} message(s): ${JSON.stringify(summary.refused_by_bridge)}`,
    )
  }
  return {
    seconds: summary.seconds,
    sent: summary.sent,
    acknowledged: summary.accepted,
    acknowledgedPoints: summary.accepted - refusedByBridge,
    pointsPerMessage: 1,
    acknowledgedAs: 'PUBACK',
    statuses: { PUBACK: summary.accepted, ...summary.refused },
    missed: summary.missed,
    timeouts: 0,
    socketErrors: Object.values(summary.refused).reduce((a, b) => a + b, 0),
    latency: summary.latency_ms,
    cpuSeconds: summary.cpu_seconds,
  }
}
