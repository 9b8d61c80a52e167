/**
 * `pnpm dlq:replay`: lists or replays the dead-letter queue (the failed sets of the store queues,
 * alert-evaluate and alert-deliver).
 *
 *   pnpm dlq:replay                                   list the dead letters of every queue
 *   pnpm dlq:replay --all                             replay every one of them
 *   pnpm dlq:replay --queue store-influx --all        replay only InfluxDB's
 *   pnpm dlq:replay --queue store-influx --job 42 --job 43
 *
 * Reads the Redis variables (REDIS_URL, or REDIS_SENTINELS…, or REDIS_CLUSTER_NODES) and QUEUE_PREFIX
 * like the apps. Exit code 1 when a job asked for was not found.
 */
import { parseArgs } from 'node:util'
import { loadConfigOrExit, loadRedisConfig, redisTargetOf } from '@iotflow/config'
import { queueCatalog } from './catalog.js'
import { createRedisConnection } from './connection.js'
import { createDeadLetters, type DeadLetterQueueKey, deadLetterQueues } from './dead-letters.js'

const USAGE =
  'usage: pnpm dlq:replay [--queue store-postgres|store-influx|alert-evaluate|alert-deliver] [--all | --job <id> ...]'

const { values } = parseArgs({
  options: {
    queue: { type: 'string', multiple: true },
    job: { type: 'string', multiple: true },
    all: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
})
if (values.help) {
  console.log(USAGE)
  process.exit(0)
}
const byName = new Map(deadLetterQueues.map((key) => [queueCatalog[key].name as string, key]))
const queues = values.queue?.map((name) => {
  const key = byName.get(name)
  if (!key) {
    console.error(`unknown queue ${JSON.stringify(name)}; one of: ${[...byName.keys()].join(', ')}\n${USAGE}`)
    process.exit(2)
  }
  return key as DeadLetterQueueKey
})
if (values.all && values.job) {
  console.error(`--all and --job exclude each other\n${USAGE}`)
  process.exit(2)
}

const config = loadConfigOrExit(() => loadRedisConfig())
const connection = createRedisConnection(redisTargetOf(config), 'producer', { enableOfflineQueue: true })
const deadLetters = createDeadLetters(connection, config.QUEUE_PREFIX)
let exitCode = 0
try {
  if (!values.all && !values.job) {
    const letters = await deadLetters.list(queues)
    if (letters.length === 0) console.log('no dead letters')
    for (const l of letters) {
      const when = l.failedAt ? new Date(l.failedAt).toISOString() : '?'
      const what =
        l.queue === queueCatalog.alertDeliver.name
          ? `${l.batchId}  device ${l.deviceIds.join(',')}`
          : `batch ${l.batchId}  device ${l.deviceIds.join(',')}  ${l.points} point(s)`
      console.log(
        `${l.queue} job ${l.jobId}  ${what}  failed ${when} after ${l.attemptsMade} attempt(s): ${l.failedReason}`,
      )
    }
    if (letters.length > 0) console.log(`\n${letters.length} dead letter(s); replay with --all or --job <id>`)
  } else {
    const report = await deadLetters.replay({ queues, jobIds: values.job })
    for (const r of report.replayed) console.log(`replayed ${r.queue} job ${r.jobId}`)
    for (const id of report.notFound) console.error(`job ${id}: not in a failed set`)
    console.log(`${report.replayed.length} job(s) replayed`)
    if (report.notFound.length > 0) exitCode = 1
  }
} finally {
  await deadLetters.close()
  await connection.quit()
}
process.exitCode = exitCode
