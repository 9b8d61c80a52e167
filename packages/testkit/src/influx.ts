import { join } from 'node:path'
import { type InfluxQueryEndpoint, queryInfluxQl, seriesRows } from '@iotflow/influx'
import { uniqueName } from './names.js'
import { startPrivateServer } from './private-server.js'
import { serviceUrls } from './services.js'

/**
 * An InfluxDB 1.x database of its own for one test file; `authorization` is the header to send where
 * the server requires credentials.
 */
export async function createTestInfluxDatabase(
  url = serviceUrls.influx,
  access: { authorization?: string } = {},
) {
  const database = uniqueName('iotflow_test')
  const endpoint: InfluxQueryEndpoint = { url, database, ...access }
  const headers = access.authorization ? { authorization: access.authorization } : undefined
  const query = (q: string) => queryInfluxQl(endpoint, q)
  /** A statement that changes something (POST). */
  const command = async (q: string) => {
    const response = await fetch(`${url}/query`, {
      method: 'POST',
      body: new URLSearchParams({ q }),
      headers,
    })
    const text = await response.text()
    // InfluxDB 1.x answers a statement that failed with 200 and the error in its results.
    const failed =
      response.ok && (JSON.parse(text) as { results?: { error?: string }[] }).results?.find((r) => r.error)
    if (!response.ok || failed) throw new Error(`InfluxDB refused ${q}: ${response.status} ${text}`)
  }
  await command(`CREATE DATABASE "${database}"`)
  return {
    url,
    database,
    /** Rows of `SELECT * FROM telemetry` for one device, oldest first, times in epoch ms. */
    async rowsOf(deviceId: number) {
      return seriesRows(await query(`SELECT * FROM telemetry WHERE device_id = '${deviceId}'`))
    },
    async fieldTypes(): Promise<Record<string, string>> {
      const rows = seriesRows(await query('SHOW FIELD KEYS FROM telemetry'))
      return Object.fromEntries(rows.map((r) => [r.fieldKey as string, r.fieldType as string]))
    },
    /** Writes line protocol (ms) straight into the database, bypassing the pipeline. */
    async writeLines(lines: string[]) {
      const params = new URLSearchParams({ db: database, precision: 'ms' })
      const response = await fetch(`${url}/write?${params}`, {
        method: 'POST',
        body: lines.join('\n'),
        headers,
      })
      if (response.status !== 204) throw new Error(`InfluxDB refused the write: ${await response.text()}`)
    },
    /**
     * Drops the shard holding `timeMs`, with its data and its field types: the way to undo a field
     * type conflict that DROP SERIES leaves in place.
     */
    async dropShardHolding(timeMs: number) {
      const shards = seriesRows(await query('SHOW SHARDS')).filter(
        (shard) =>
          shard.database === database &&
          Date.parse(shard.start_time as string) <= timeMs &&
          timeMs < Date.parse(shard.end_time as string),
      )
      for (const shard of shards) await command(`DROP SHARD ${shard.id}`)
      return shards.length
    },
    drop: () => command(`DROP DATABASE "${database}"`),
  }
}

/**
 * A private influxd (1.x) that a test may stop and start; `extraEnv` adds INFLUXDB_* settings.
 * `rpcAddress` is where influxd backup and restore reach it.
 */
export async function startPrivateInfluxd(extraEnv: Record<string, string> = {}) {
  const server = await startPrivateServer({
    name: 'influxd',
    command: 'influxd',
    args: () => [],
    env: (dir, port, rpcPort) => ({
      INFLUXDB_META_DIR: join(dir, 'meta'),
      INFLUXDB_DATA_DIR: join(dir, 'data'),
      INFLUXDB_DATA_WAL_DIR: join(dir, 'wal'),
      INFLUXDB_HTTP_BIND_ADDRESS: `127.0.0.1:${port}`,
      INFLUXDB_BIND_ADDRESS: `127.0.0.1:${rpcPort}`,
      INFLUXDB_REPORTING_ENABLED: 'false',
      INFLUXDB_REPORTING_DISABLED: 'true',
      INFLUXDB_MONITOR_STORE_ENABLED: 'false',
      INFLUXDB_HTTP_LOG_ENABLED: 'false',
      INFLUXDB_DATA_QUERY_LOG_ENABLED: 'false',
      INFLUXDB_LOGGING_LEVEL: 'error',
      ...extraEnv,
    }),
    answers: async (port) => (await fetch(`http://127.0.0.1:${port}/ping`)).status === 204,
  })
  return { ...server, url: `http://127.0.0.1:${server.port}`, rpcAddress: `127.0.0.1:${server.extraPort}` }
}
