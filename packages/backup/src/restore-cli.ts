/**
 * `pnpm restore --from DIR [--force]`: restores a backup of `pnpm backup` into the PostgreSQL
 * database DATABASE_URL names and the InfluxDB database (or bucket) of the writer's variables
 * (docs/backups.md). Stop the writers first: they would write into what is being restored.
 *
 * Both must be missing or empty; --force drops what they hold first. Reads the variables of
 * `pnpm backup`.
 *
 * Exit code 0 when restored and the stores hold what the manifest says, 1 when it failed, 2 on bad
 * usage or a refusal (a store not empty, a backup this code or server cannot take): nothing was
 * changed then.
 */
import { parseArgs } from 'node:util'
import { loadBackupConfig, loadConfigOrExit } from '@iotflow/config'
import { RefusedError } from './refused-error.js'
import { runRestore } from './restore.js'
import { exitWithUsage, parseOrExit } from './usage.js'

const USAGE = 'usage: pnpm restore --from <backup directory> [--force]'

const { from, force } = parseOrExit(
  USAGE,
  () =>
    parseArgs({ options: { from: { type: 'string' }, force: { type: 'boolean', default: false } } }).values,
)
if (!from) exitWithUsage(USAGE, '--from is required')
const config = loadConfigOrExit(() => loadBackupConfig())
try {
  const report = await runRestore(config, from, { force }, (line) => console.log(line))
  const leveled = Object.entries(report.leveled)
    .filter(([, points]) => points > 0)
    .map(([name, points]) => `${name} ${points} point(s)`)
  const queued = Object.entries(report.manifest.queue.acknowledged_not_in_backup)
    .filter(([, unstored]) => unstored.points > 0)
    .map(([name, unstored]) => `${name} ${unstored.points} point(s)`)
  console.log(
    `restore complete from ${from} (backup of ${report.manifest.started_at}): postgresql ` +
      `${report.postgres.points} points, ${report.postgres.devices} devices; influxdb ` +
      `${report.influx.fieldValues} field values` +
      (leveled.length
        ? `, with the batches one store held and the other lacked written into it: ${leveled.join(', ')}`
        : '') +
      (queued.length
        ? `. Not in the backup, still queued when it was taken: ${queued.join(', ')}; restore Redis from the same moment to store them`
        : ''),
  )
} catch (error) {
  console.error(`restore failed: ${(error as Error).message}`)
  process.exitCode = error instanceof RefusedError ? 2 : 1
}
