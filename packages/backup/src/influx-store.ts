import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { BackupConfig } from '@iotflow/config'
import {
  type InfluxQueryEndpoint,
  influxQueryEndpointOf,
  influxTargetFrom,
  MEASUREMENT,
  queryInfluxQl,
  quoteInfluxIdentifier,
  runInfluxQlStatement,
} from '@iotflow/influx'
import { RefusedError } from './refused-error.js'
import { type Command, runCommand } from './run-command.js'

/**
 * The InfluxDB side of a backup, as the writer's variables name it: 1.x's database (influxd backup
 * and restore, portable format, over the RPC address INFLUX_BACKUP_HOST) or 2.x's bucket (the
 * `influx` CLI of 2.x, over HTTP with the token). Only 1.x runs in this repository's tests.
 */
export interface InfluxBackupTarget {
  api: 'v1' | 'v2'
  /** The database (1.x) or bucket (2.x) the writer writes. */
  name: string
  /** Reading it with InfluxQL (2.x: the bucket's v1-compatible mapping). */
  endpoint: InfluxQueryEndpoint
  /** Writes the backup of `name` into `dir`. */
  backupCommand(dir: string): Command
  /** Restores the database or bucket called `from` in the backup in `dir` as `name`, which must not exist. */
  restoreCommand(dir: string, from: string): Command
  /** Asks the program that backs up and restores for its version. */
  versionCommand: Command
  /** What that program must answer: the tool of this API's major version. */
  toolVersion: RegExp
  /** The program, as an operator would install it. */
  toolName: string
}

export function influxBackupTargetOf(config: BackupConfig): InfluxBackupTarget {
  const endpoint = influxQueryEndpointOf(influxTargetFrom(config))
  if (config.INFLUX_API === 'v1') {
    const host = ['-host', config.INFLUX_BACKUP_HOST]
    return {
      api: 'v1',
      name: config.INFLUX_DATABASE,
      endpoint,
      backupCommand: (dir) => ({
        command: 'influxd',
        args: ['backup', '-portable', '-db', config.INFLUX_DATABASE, ...host, dir],
      }),
      restoreCommand: (dir, from) => ({
        command: 'influxd',
        args: ['restore', '-portable', '-db', from, '-newdb', config.INFLUX_DATABASE, ...host, dir],
      }),
      // "InfluxDB v1.8.10 (git: 1.8 688e697c51)"; 2.x's influxd has no backup command.
      versionCommand: { command: 'influxd', args: ['version'] },
      toolVersion: /^InfluxDB v?1\./,
      toolName: "influxd 1.x (InfluxDB 1.x's server binary)",
    }
  }
  // influx CLI 2.x reads the token from INFLUX_TOKEN: kept off the command line.
  const http = ['--host', config.INFLUX_URL, '--org', config.INFLUX_ORG]
  const env = { INFLUX_TOKEN: config.INFLUX_TOKEN ?? '' }
  return {
    api: 'v2',
    name: config.INFLUX_BUCKET,
    endpoint,
    backupCommand: (dir) => ({
      command: 'influx',
      args: ['backup', dir, ...http, '--bucket', config.INFLUX_BUCKET],
      env,
    }),
    restoreCommand: (dir, from) => ({
      command: 'influx',
      args: ['restore', dir, ...http, '--bucket', from, '--new-bucket', config.INFLUX_BUCKET],
      env,
    }),
    // "Influx CLI 2.7.3 (git: 8b962c7e75) build_date: …"; InfluxDB 1.x's shell, also called
    // influx, refuses the argument ("unknown arguments: version").
    versionCommand: { command: 'influx', args: ['version'] },
    toolVersion: /^Influx CLI v?2\./,
    toolName: 'influx, the InfluxDB 2.x CLI (influx-cli)',
  }
}

/**
 * Refuses (before anything is held or written) a server or a tool of the other major version than
 * INFLUX_API says: `serverVersion` is the server's /ping answer; the tool must say it is this API's.
 */
export async function checkInfluxServerAndTool(
  target: InfluxBackupTarget,
  serverVersion: string,
): Promise<void> {
  const serverMajor = /^v?(\d+)\./.exec(serverVersion)?.[1]
  const expectedMajor = target.api === 'v1' ? '1' : '2'
  if (serverMajor !== undefined && serverMajor !== expectedMajor) {
    throw new RefusedError(
      `INFLUX_API is ${target.api} but the server at INFLUX_URL is InfluxDB ${serverVersion}: set INFLUX_API=v${serverMajor}`,
    )
  }
  const { command, args } = target.versionCommand
  const answer = await runCommand(target.versionCommand).catch((error: Error) => error)
  const said = answer instanceof Error ? answer.message : answer
  if (answer instanceof Error || !target.toolVersion.test(said.trim())) {
    throw new RefusedError(
      `the backup and restore of InfluxDB ${expectedMajor}.x need ${target.toolName} on PATH; ` +
        `\`${command} ${args.join(' ')}\` said: ${said.trim().split('\n').slice(0, 3).join(' / ')}`,
    )
  }
}

/** The server's version, from its /ping answer. */
export async function influxVersionOf(url: string): Promise<string> {
  const response = await fetch(`${url}/ping`)
  await response.arrayBuffer()
  return response.headers.get('x-influxdb-version') ?? 'unknown'
}

/**
 * Field values stored (the sum over fields of `count(*)`): InfluxQL counts per field, and a point
 * may carry any subset of the fields, so points cannot be counted exactly without reading them all.
 */
export async function influxFieldValues(endpoint: InfluxQueryEndpoint): Promise<number> {
  const [series] = await queryInfluxQl(endpoint, `SELECT count(*) FROM ${MEASUREMENT}`)
  const row = series?.values[0] ?? []
  return row.slice(1).reduce<number>((sum, value) => sum + (Number(value) || 0), 0)
}

/** `missing`, `empty` (no measurement), or how many measurements the database (or bucket) holds. */
export async function influxDatabaseState(target: InfluxBackupTarget): Promise<'missing' | 'empty' | number> {
  if (target.api === 'v2') return influxBucketState(target)
  const [databases] = await queryInfluxQl(target.endpoint, 'SHOW DATABASES')
  if (!(databases?.values ?? []).some(([name]) => name === target.name)) return 'missing'
  const measurements = await queryInfluxQl(target.endpoint, 'SHOW MEASUREMENTS')
  const count = measurements[0]?.values?.length ?? 0
  return count === 0 ? 'empty' : count
}

/**
 * Restores the backup in `dir` of the database or bucket `from` as the target's. influxd 1.x
 * restores a database that held no shard (no point yet), then fails with "DB metadata not
 * changed": that failure, with the database there afterwards, is a restore.
 */
export async function restoreInflux(target: InfluxBackupTarget, dir: string, from: string): Promise<void> {
  try {
    await runCommand(target.restoreCommand(dir, from))
  } catch (error) {
    const shardless = target.api === 'v1' && !(await portableBackupHoldsShards(dir))
    if (!shardless || (await influxDatabaseState(target)) === 'missing') throw error
  }
}

/** Whether a portable backup (1.x) lists any shard file in its manifests. */
async function portableBackupHoldsShards(dir: string): Promise<boolean> {
  const manifests = (await readdir(dir)).filter((name) => name.endsWith('.manifest'))
  for (const name of manifests) {
    const manifest = JSON.parse(await readFile(join(dir, name), 'utf8')) as { files?: unknown[] }
    if ((manifest.files ?? []).length > 0) return true
  }
  return false
}

/** Drops the database (1.x) or deletes the bucket (2.x), so that a restore can create it. */
export async function dropInfluxDatabase(target: InfluxBackupTarget): Promise<void> {
  if (target.api === 'v2') return deleteInfluxBucket(target)
  await runInfluxQlStatement(target.endpoint, `DROP DATABASE ${quoteInfluxIdentifier(target.name)}`)
}

async function influxBucketState(target: InfluxBackupTarget): Promise<'missing' | 'empty' | number> {
  if (!(await findBucketId(target))) return 'missing'
  const measurements = await queryInfluxQl(target.endpoint, 'SHOW MEASUREMENTS')
  const count = measurements[0]?.values?.length ?? 0
  return count === 0 ? 'empty' : count
}

async function deleteInfluxBucket(target: InfluxBackupTarget): Promise<void> {
  const id = await findBucketId(target)
  if (!id) return
  const response = await fetch(`${target.endpoint.url}/api/v2/buckets/${id}`, {
    method: 'DELETE',
    headers: authorizationOf(target),
  })
  if (!response.ok)
    throw new Error(`InfluxDB refused to delete bucket ${target.name}: ${await response.text()}`)
}

async function findBucketId(target: InfluxBackupTarget): Promise<string | undefined> {
  const params = new URLSearchParams({ name: target.name })
  const response = await fetch(`${target.endpoint.url}/api/v2/buckets?${params}`, {
    headers: authorizationOf(target),
  })
  if (response.status === 404) return undefined
  if (!response.ok) throw new Error(`InfluxDB did not list its buckets: ${await response.text()}`)
  const body = (await response.json()) as { buckets?: { id: string }[] }
  return body.buckets?.[0]?.id
}

const authorizationOf = (target: InfluxBackupTarget): Record<string, string> =>
  target.endpoint.authorization ? { authorization: target.endpoint.authorization } : {}
