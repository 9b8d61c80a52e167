/**
 * Micro-benchmark of the per-device rate check (packages/queue/src/produce/token-buckets.ts) against a
 * private Redis with the production persistence (AOF, fsync every second): `--callers` concurrent
 * callers each take one point from their device's bucket, over and over, for `--seconds`.
 *
 *   pnpm bench:rate-check [--callers 200] [--devices 200] [--seconds 10]
 *
 * Prints takes/s, the takes one script call carried on average, and the CPU each take cost Redis
 * (from INFO) and this process: CPU figures, which hold on a busy machine better than rates.
 */
import { parseArgs } from 'node:util'
import { createRedisConnection, createTokenBuckets, waitForReady } from '@iotflow/queue'
import { startPrivateRedis } from '@iotflow/testkit'

const { values: args } = parseArgs({
  options: {
    callers: { type: 'string', default: '200' },
    devices: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
  },
})
const CALLERS = Number(args.callers)
const DEVICES = Number(args.devices)
const SECONDS = Number(args.seconds)

const server = await startPrivateRedis({ appendfsync: 'everysec' })
const redis = createRedisConnection(server.url, 'producer')
try {
  await waitForReady(redis)
  const buckets = createTokenBuckets(redis, 'rate-check-bench', 'device')
  const redisCpu = async () => {
    const info = await redis.info('everything')
    const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? Number.NaN)
    const evalCalls =
      Number(/cmdstat_evalsha:calls=(\d+)/.exec(info)?.[1] ?? 0) +
      Number(/cmdstat_eval:calls=(\d+)/.exec(info)?.[1] ?? 0)
    return { seconds: field('used_cpu_user') + field('used_cpu_sys'), evalCalls }
  }
  const before = await redisCpu()
  const ownBefore = process.cpuUsage()
  const end = performance.now() + SECONDS * 1000
  let takes = 0
  await Promise.all(
    Array.from({ length: CALLERS }, async (_, caller) => {
      const name = String(caller % DEVICES)
      while (performance.now() < end) {
        const taken = await buckets.take([{ name, perSecond: 1_000_000, burst: 1_000_000, cost: 1 }])
        if (!taken.ok) throw new Error('a bench device was refused: its limit is meant to be out of reach')
        takes++
      }
    }),
  )
  const own = process.cpuUsage(ownBefore)
  const after = await redisCpu()
  const perTakeUs = (seconds: number) => ((seconds * 1e6) / takes).toFixed(1)
  console.log(`callers ${CALLERS}, devices ${DEVICES}, ${SECONDS} s`)
  console.log(`takes/s                 ${Math.round(takes / SECONDS).toLocaleString('en-US')}`)
  console.log(
    `takes per script call   ${(takes / Math.max(1, after.evalCalls - before.evalCalls)).toFixed(1)}`,
  )
  console.log(`Redis CPU per take      ${perTakeUs(after.seconds - before.seconds)} µs`)
  console.log(`caller CPU per take     ${perTakeUs((own.user + own.system) / 1e6)} µs`)
} finally {
  redis.disconnect()
  await server.dispose()
}
