/**
 * `pnpm backup --to DIR`: an online backup of PostgreSQL and InfluxDB into DIR (absent or empty),
 * with a manifest (docs/backups.md).
 *
 * Reads DATABASE_URL, REDIS_URL and QUEUE_PREFIX like the apps, the InfluxDB writer's variables
 * (INFLUX_API, INFLUX_URL, …), INFLUX_BACKUP_HOST (influxd's RPC address), PG_BIN_DIR,
 * BACKUP_SETTLE_MS and BACKUP_HOLD_LEASE_MS (the lease of its hold on the writers).
 *
 * Exit code 0 when the backup is complete, 1 when it failed, 2 on bad usage or a refusal (DIR holds
 * something): nothing was written then.
 */
import { parseArgs } from 'node:util'
import { loadBackupConfig, loadConfigOrExit } from '@iotflow/config'
import { describeLevel, runBackup } from './backup.js'
import { RefusedError } from './refused-error.js'
import { exitWithUsage, parseOrExit } from './usage.js'

const USAGE = 'usage: pnpm backup --to <directory>   (the directory must be absent or empty)'

const { to } = parseOrExit(USAGE, () => parseArgs({ options: { to: { type: 'string' } } }).values)
if (!to) exitWithUsage(USAGE, '--to is required')
const config = loadConfigOrExit(() => loadBackupConfig())
try {
  const manifest = await runBackup(config, to, (line) => console.log(line))
  const left = Object.entries(manifest.queue.acknowledged_not_in_backup)
    .filter(([, unstored]) => unstored.points > 0)
    .map(([name, unstored]) => `${name} ${unstored.points} point(s) in ${unstored.jobs} job(s)`)
  console.log(
    `backup complete in ${to}: postgresql ${manifest.postgresql.points} points, ` +
      `influxdb ${manifest.influxdb.field_values} field values; ` +
      (left.length
        ? `acknowledged before the start but still queued, not in the backup: ${left.join(', ')}`
        : 'every point acknowledged before the start is in it'),
  )
  const uneven = describeLevel(manifest.level)
  if (uneven) console.log(`kept in the backup for the restore to write (one store had them): ${uneven}`)
} catch (error) {
  console.error(`backup failed: ${(error as Error).message}`)
  process.exitCode = error instanceof RefusedError ? 2 : 1
}
