import { freePort, waitFor } from '@iotflow/testkit'
import { bundle } from '../../infra/build/build-apps.js'
import { spawnNode } from '../../test/support/app-process.js'
import { stopProcess } from './stop-process.js'
import type { BenchStores } from './stores.js'
import type { Teardown } from './teardown.js'

export interface YardstickStats {
  answered_points: number
  postgres_points: number
  influx_points: number
  in_flight: number
  failures: number
}

/** The yardstick gateway (bench/yardstick/main.ts) in a process of its own, on the scenario's stores. */
export async function startYardstick(
  teardown: Teardown,
  stores: BenchStores,
  devicesFile: string,
  nodeArgs: string[] = [],
) {
  const port = await freePort()
  // Built like the apps, so that neither side carries a TypeScript loader.
  await bundle('bench/yardstick/main.ts', 'dist/yardstick/main.js')
  const yardstick = teardown.add(
    'the yardstick',
    spawnNode(
      'yardstick',
      'dist/yardstick/main.js',
      {
        PORT: String(port),
        DATABASE_URL: stores.postgres.url,
        INFLUX_URL: stores.influx.url,
        INFLUX_DATABASE: stores.influx.database,
        DEVICES_FILE: devicesFile,
      },
      { nodeArgs },
    ),
    stopProcess,
  )
  const url = `http://127.0.0.1:${port}`
  await waitFor(
    async () => {
      if (!yardstick.running()) throw new Error(`the yardstick exited:\n${yardstick.output()}`)
      return (await fetch(`${url}/health`)).ok
    },
    { timeoutMs: 60_000, intervalMs: 250, what: 'the yardstick' },
  )
  return {
    url,
    process: yardstick,
    stats: async () => (await (await fetch(`${url}/stats`)).json()) as YardstickStats,
  }
}
