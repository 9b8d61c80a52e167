import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { queryV1, seriesRows } from '@iotflow/influx'
import { uniqueName } from './names.js'
import { serviceUrls } from './services.js'
import { waitFor } from './wait-for.js'

/** An InfluxDB 1.x database of its own for one test file. */
export async function createTestInfluxDatabase(url = serviceUrls.influx) {
  const database = uniqueName('iotflow_test')
  await influxQl(url, `CREATE DATABASE "${database}"`)
  return {
    url,
    database,
    /** Rows of `SELECT * FROM telemetry` for one device, oldest first, times in epoch ms. */
    async rowsOf(deviceId: number) {
      return seriesRows(
        await queryV1(url, database, `SELECT * FROM telemetry WHERE device_id = '${deviceId}'`),
      )
    },
    async fieldTypes(): Promise<Record<string, string>> {
      const rows = seriesRows(await queryV1(url, database, 'SHOW FIELD KEYS FROM telemetry'))
      return Object.fromEntries(rows.map((r) => [r.fieldKey as string, r.fieldType as string]))
    },
    drop: () => influxQl(url, `DROP DATABASE "${database}"`),
  }
}

async function influxQl(url: string, q: string) {
  const response = await fetch(`${url}/query`, { method: 'POST', body: new URLSearchParams({ q }) })
  if (!response.ok) throw new Error(`InfluxDB refused ${q}: ${response.status} ${await response.text()}`)
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/**
 * A private influxd (1.x) that a test may stop and start, with its data in a temp directory.
 * Stopping keeps the data; `dispose` removes it.
 */
export async function startPrivateInfluxd() {
  const dir = await mkdtemp(join(tmpdir(), 'iotflow-influxd-'))
  const [httpPort, rpcPort] = [await freePort(), await freePort()]
  const url = `http://127.0.0.1:${httpPort}`
  let child: ChildProcess | undefined

  const env = {
    ...process.env,
    INFLUXDB_META_DIR: join(dir, 'meta'),
    INFLUXDB_DATA_DIR: join(dir, 'data'),
    INFLUXDB_DATA_WAL_DIR: join(dir, 'wal'),
    INFLUXDB_HTTP_BIND_ADDRESS: `127.0.0.1:${httpPort}`,
    INFLUXDB_BIND_ADDRESS: `127.0.0.1:${rpcPort}`,
    INFLUXDB_REPORTING_ENABLED: 'false',
    INFLUXDB_REPORTING_DISABLED: 'true',
    INFLUXDB_MONITOR_STORE_ENABLED: 'false',
    INFLUXDB_HTTP_LOG_ENABLED: 'false',
    INFLUXDB_DATA_QUERY_LOG_ENABLED: 'false',
    INFLUXDB_LOGGING_LEVEL: 'error',
  }

  const answers = async () => {
    try {
      return (await fetch(`${url}/ping`)).status === 204
    } catch {
      return false
    }
  }

  async function start() {
    child = spawn('influxd', [], { env, stdio: 'ignore' })
    await waitFor(answers, { timeoutMs: 30_000, what: `influxd on ${url}` })
  }

  async function stop() {
    const running = child
    child = undefined
    if (!running || running.exitCode !== null) return
    const exited = new Promise((resolve) => running.once('exit', resolve))
    running.kill('SIGTERM')
    await exited
  }

  await start()
  return {
    url,
    start,
    stop,
    async dispose() {
      await stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}
