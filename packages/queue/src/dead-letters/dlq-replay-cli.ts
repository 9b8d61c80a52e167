/**
 * `pnpm dlq:replay`: lists or replays the dead-letter queue (the failed sets of the store queues and
 * alert-deliver, and the alert streams' dead letters, named alert-evaluate).
 *
 *   pnpm dlq:replay                                   list the dead letters of every queue
 *   pnpm dlq:replay --all                             replay every one of them
 *   pnpm dlq:replay --queue store-influx --all        replay only InfluxDB's
 *   pnpm dlq:replay --queue store-influx --job 42 --job 43
 *   pnpm dlq:replay --partition 3 --job 42              job 42 of queue partition 3 only
 *
 * Reads the Redis variables (REDIS_URL, or REDIS_SENTINELS…, or REDIS_CLUSTER_NODES), QUEUE_PREFIX and
 * QUEUE_PARTITIONS like the apps, and looks in every partition unless --partition narrows it (job
 * ids are per partition). Exit code 1 when a job asked for was not found.
 */
import { parseArgs } from 'node:util'
import { loadConfigOrExit, loadRedisConfig, redisTargetOf } from '@iotflow/config'
import { queueCatalog } from '../catalog.js'
import { queueLayoutOf } from '../partitions.js'
import { createRedisConnection } from '../redis/connection.js'
import { createDeadLetters, type DeadLetterQueueKey, deadLetterQueues } from './dead-letters.js'

const USAGE =
  'usage: pnpm dlq:replay [--queue store-postgres|store-influx|alert-evaluate|alert-deliver] [--partition <k> ...] [--all | --job <id> ...]'

const { values } = parseArgs({
  options: {
    queue: { type: 'string', multiple: true },
    job: { type: 'string', multiple: true },
    partition: { type: 'string', multiple: true },
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
const layout = queueLayoutOf(config)
const partitions = values.partition?.map((text) => {
  const partition = Number(text)
  if (!/^\d+$/.test(text) || partition >= layout.partitions) {
    console.error(
      `no queue partition ${JSON.stringify(text)}: QUEUE_PARTITIONS is ${layout.partitions} (partitions 0 to ${layout.partitions - 1})\n${USAGE}`,
    )
    process.exit(2)
  }
  return partition
})
/** A queue as the operator names it: with its partition when there are several. */
const queueOf = (queue: string, partition: number | undefined) =>
  layout.partitions > 1 && partition !== undefined ? `${queue} p${partition}` : queue

const connection = createRedisConnection(redisTargetOf(config), 'producer', { enableOfflineQueue: true })
const deadLetters = createDeadLetters(connection, layout)
let exitCode = 0
try {
  if (!values.all && !values.job) {
    const letters = await deadLetters.list(queues, partitions)
    if (letters.length === 0) console.log('no dead letters')
    for (const l of letters) {
      const when = l.failedAt ? new Date(l.failedAt).toISOString() : '?'
      const what =
        l.queue === queueCatalog.alertDeliver.name
          ? `${l.batchId}  device ${l.deviceIds.join(',')}`
          : `batch ${l.batchId}  device ${l.deviceIds.join(',')}  ${l.points} point(s)`
      console.log(
        `${queueOf(l.queue, l.partition)} job ${l.jobId}  ${what}  failed ${when} after ${l.attemptsMade} attempt(s): ${l.failedReason}`,
      )
    }
    if (letters.length > 0) console.log(`\n${letters.length} dead letter(s); replay with --all or --job <id>`)
  } else {
    const report = await deadLetters.replay({ queues, jobIds: values.job, partitions })
    for (const r of report.replayed) console.log(`replayed ${queueOf(r.queue, r.partition)} job ${r.jobId}`)
    for (const id of report.notFound) console.error(`job ${id}: not in a failed set`)
    console.log(`${report.replayed.length} job(s) replayed`)
    if (report.notFound.length > 0) exitCode = 1
  }
} finally {
  await deadLetters.close()
  await connection.quit()
}
process.exitCode = exitCode
