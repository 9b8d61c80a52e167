/**
 * `pnpm verify --since <time>`: compares PostgreSQL and InfluxDB point by point and prints every
 * difference.
 *
 *   pnpm verify --since -1h
 *   pnpm verify --since 2026-11-28T00:00:00Z --until 2026-11-28T12:00:00Z --device 7 --verbose
 *
 * A device is read in windows of at most --chunk-points rows per store (10,000 unless given), so memory follows
 * that, not the device's points in the range.
 *
 * Reads DATABASE_URL and the InfluxDB variables of the InfluxDB writer (INFLUX_API, INFLUX_URL, …), and
 * reads InfluxDB with InfluxQL: 1.x's /query (INFLUX_DATABASE, INFLUX_USERNAME/PASSWORD), or 2.x's
 * v1-compatible /query (the bucket's DBRP mapping, INFLUX_TOKEN).
 *
 * Exit code 0 when the stores agree, 1 when they differ, 2 on bad usage, 3 when a store cannot be read.
 */
import { parseArgs } from 'node:util'
import { checkInfluxCredentials, influxEnv, loadConfigOrExit, parseEnv, postgresEnv } from '@iotflow/config'
import { closeSql, createSql } from '@iotflow/db'
import { influxQueryEndpointOf, influxTargetFrom } from '@iotflow/influx'
import { Type } from '@sinclair/typebox'
import { compareStores, DEFAULT_CHUNK_POINTS } from './compare-stores.js'
import { parseTimeArgument } from './time-argument.js'

const USAGE =
  'usage: pnpm verify --since <time> [--until <time>] [--device <id> ...] [--verbose] [--max-differences 20]\n' +
  `                   [--chunk-points ${DEFAULT_CHUNK_POINTS}]\n` +
  '  <time>: ISO-8601, epoch ms, or relative: -30s, -15m, -1h, -2d'
// InfluxDB stores nanoseconds in an int64: the largest time it can hold, in ms, rounded down.
const END_OF_TIME_MS = 9_000_000_000_000

const VerifyEnv = Type.Object({
  DATABASE_URL: postgresEnv.DATABASE_URL,
  ...influxEnv,
})

function usage(problem: string): never {
  console.error(`${problem}\n${USAGE}`)
  process.exit(2)
}

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        since: { type: 'string' },
        until: { type: 'string' },
        device: { type: 'string', multiple: true },
        verbose: { type: 'boolean', default: false },
        'max-differences': { type: 'string', default: '20' },
        'chunk-points': { type: 'string', default: String(DEFAULT_CHUNK_POINTS) },
      },
    })
  } catch (error) {
    return usage((error as Error).message)
  }
})()
if (!values.since) usage('--since is required')
let range: { since: number; until: number }
try {
  range = {
    since: parseTimeArgument(values.since),
    until: values.until ? parseTimeArgument(values.until) : END_OF_TIME_MS,
  }
} catch (error) {
  usage((error as Error).message)
}
const devices = values.device?.map(Number)
if (devices?.some((id) => !Number.isInteger(id))) usage('--device takes a device id (an integer)')
const maxDifferences = Number(values['max-differences'])
const chunkPoints = Number(values['chunk-points'])
if (!Number.isInteger(chunkPoints) || chunkPoints < 1) usage('--chunk-points takes a positive integer')

const config = loadConfigOrExit(() => checkInfluxCredentials(parseEnv(VerifyEnv)))
const sql = createSql(config.DATABASE_URL, { max: 2 })
try {
  const report = await compareStores(sql, influxQueryEndpointOf(influxTargetFrom(config)), range, devices, {
    chunkPoints,
  })
  const iso = (t: number) => new Date(t).toISOString()
  console.log(`comparing ${iso(range.since)} … ${iso(range.until)}: ${report.devices.length} device(s)`)
  for (const device of report.devices) {
    const agrees = device.agree
    if (agrees && !values.verbose) continue
    console.log(
      `device ${device.deviceId}: ${agrees ? 'agree' : 'DIFFER'}  ` +
        `postgres ${device.postgres.count} points (checksum ${device.postgres.checksum}` +
        `${device.postgres.duplicates ? `, ${device.postgres.duplicates} duplicated` : ''})  ` +
        `influxdb ${device.influx.count} points (checksum ${device.influx.checksum}` +
        `${device.influx.duplicates ? `, ${device.influx.duplicates} duplicated` : ''})`,
    )
    const show = (label: string, times: number[]) => {
      if (times.length === 0) return
      const shown = times.slice(0, maxDifferences).map(iso).join(', ')
      const more = times.length > maxDifferences ? ` … and ${times.length - maxDifferences} more` : ''
      console.log(`  ${label} (${times.length}): ${shown}${more}`)
    }
    show('only in postgres', device.onlyInPostgres)
    show('only in influxdb', device.onlyInInflux)
    show('different values', device.differing)
  }
  const t = report.totals
  console.log(
    `postgres ${t.postgres} points, influxdb ${t.influx} points; only in postgres ${t.onlyInPostgres}, ` +
      `only in influxdb ${t.onlyInInflux}, different values ${t.differing}: ` +
      (report.agree ? 'the stores agree' : 'THE STORES DIFFER'),
  )
  process.exitCode = report.agree ? 0 : 1
} catch (error) {
  // Unreachable, refused credentials, unknown database: not a verdict on the data.
  console.error(`could not read the stores: ${(error as Error).message}`)
  process.exitCode = 3
} finally {
  await closeSql(sql)
}
