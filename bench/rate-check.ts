/**
 * Micro-benchmark of the per-device rate check (packages/queue/src/produce/token-buckets.ts) against a
 * private Redis with the production persistence (AOF, fsync every second): `--callers` concurrent
 * callers each take one point from their device's bucket, over and over, for `--seconds`.
 *
 *   pnpm bench:rate-check [--callers 200] [--devices 200] [--seconds 10] [--via buckets|group-commit]
 *                         [--work-us 50] [--aof everysec|no]
 *
 * `--via buckets` (the default) asks the buckets directly, all callers in the same turn. `--via
 * group-commit` sends each one-point request through the gateway's group commit (its default limits)
 * into the queues, as the ingest path does (the device rate limiter: a device far from its limit is
 * admitted by this process's view of its bucket and its take rides the MULTI), with the check (on)
 * and without (off), alternated on, off, off, on. Each request first spends `--work-us` of CPU in a turn of its own (what the gateway
 * spends on a request before its enqueue), so requests reach the enqueue spread over time as in the
 * gateway, not all in one turn.
 *
 * `--aof no` runs the private Redis without its append-only file, to tell what writing each bucket's
 * SET to it costs.
 *
 * Prints the requests (takes) a second, the requests per script call of its own (takes inside a
 * MULTI are not such calls; the take of points owed by devices that stopped sending is, and may
 * fall in the next run's window: owed-points.ts; `–`: none), and the CPU
 * each request cost Redis (from INFO) and this process: CPU figures, which hold on a busy machine
 * better than rates.
 */
import { parseArgs } from 'node:util'
import {
  type BatchEnqueuer,
  createBatchEnqueuer,
  createGroupCommitEnqueuer,
  createRedisConnection,
  createTokenBuckets,
  queueLayout,
  waitForReady,
} from '@iotflow/queue'
import { startPrivateRedis } from '@iotflow/testkit'
import { createDeviceRateLimiter } from '../packages/ingest/src/device-rate-limiter.js'

const { values: args } = parseArgs({
  options: {
    callers: { type: 'string', default: '200' },
    devices: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    via: { type: 'string', default: 'buckets' },
    'work-us': { type: 'string', default: '50' },
    aof: { type: 'string', default: 'everysec' },
  },
})
const CALLERS = Number(args.callers)
const DEVICES = Number(args.devices)
const SECONDS = Number(args.seconds)
const WORK_MS = Number(args['work-us']) / 1000
if (args.via !== 'buckets' && args.via !== 'group-commit')
  throw new Error('--via takes buckets or group-commit')
/** GROUP_COMMIT_* defaults (packages/config). */
const GROUP_COMMIT = { maxPoints: 1000, lingerMs: 4, maxInFlight: 2 }

if (args.aof !== 'everysec' && args.aof !== 'no') throw new Error('--aof takes everysec or no')
const server = await startPrivateRedis(args.aof === 'everysec' ? { appendfsync: 'everysec' } : {})
const redis = createRedisConnection(server.url, 'producer')
try {
  await waitForReady(redis)
  const buckets = createTokenBuckets(redis, 'rate-check-bench', 'device')
  // The take script's calls of their own: those naming a bucket (BullMQ's own scripts name none),
  // outside a MULTI.
  let takeCalls = 0
  const send = redis.sendCommand.bind(redis)
  redis.sendCommand = (command, stream) => {
    const inMulti = (command as unknown as { inTransaction?: boolean }).inTransaction
    if (!inMulti && command.args.some((arg) => typeof arg === 'string' && arg.includes(':bucket:')))
      takeCalls++
    return send(command, stream)
  }
  const take = async (name: string) => {
    const taken = await buckets.take([{ name, perSecond: 1_000_000, burst: 1_000_000, cost: 1 }])
    if (!taken.ok) throw new Error('a bench device was refused: its limit is meant to be out of reach')
  }
  const redisCpuSeconds = async () => {
    const info = await redis.info('cpu')
    const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? Number.NaN)
    return field('used_cpu_user') + field('used_cpu_sys')
  }

  /** `callers` closed loops of `request` for SECONDS: requests, script calls, CPU of each side. */
  async function phase(request: (caller: number) => Promise<void>) {
    const callsBefore = takeCalls
    const redisBefore = await redisCpuSeconds()
    const ownBefore = process.cpuUsage()
    const end = performance.now() + SECONDS * 1000
    let requests = 0
    await Promise.all(
      Array.from({ length: CALLERS }, async (_, caller) => {
        while (performance.now() < end) {
          await request(caller)
          requests++
        }
      }),
    )
    const own = process.cpuUsage(ownBefore)
    const perRequestUs = (seconds: number) => ((seconds * 1e6) / requests).toFixed(1)
    return {
      perSecond: Math.round(requests / SECONDS).toLocaleString('en-US'),
      takesPerCall: takeCalls > callsBefore ? (requests / (takeCalls - callsBefore)).toFixed(1) : '–',
      redisUs: perRequestUs((await redisCpuSeconds()) - redisBefore),
      ownUs: perRequestUs((own.user + own.system) / 1e6),
    }
  }

  console.log(
    `callers ${CALLERS}, devices ${DEVICES}, ${SECONDS} s, via ${args.via}, AOF ${args.aof}` +
      (args.via === 'group-commit' ? `, ${args['work-us']} µs of work per request` : ''),
  )
  if (args.via === 'buckets') {
    const result = await phase((caller) => take(String(caller % DEVICES)))
    console.log(`takes/s                 ${result.perSecond}`)
    console.log(`takes per script call   ${result.takesPerCall}`)
    console.log(`Redis CPU per take      ${result.redisUs} µs`)
    console.log(`caller CPU per take     ${result.ownUs} µs`)
  } else {
    const enqueuer: BatchEnqueuer = createGroupCommitEnqueuer(
      createBatchEnqueuer(redis, queueLayout('rate-check-bench')),
      GROUP_COMMIT,
    )
    const limiter = createDeviceRateLimiter(buckets, { pointsPerSecond: 1_000_000, burstPoints: 1_000_000 })
    const admission = (device: number) =>
      Promise.resolve(limiter.admitDeferring({ deviceId: device, points: 1 })).then((verdict) => {
        if (!verdict.ok) throw new Error('a bench device was refused: its limit is meant to be out of reach')
        return verdict.take
      })
    let t = 1_800_000_000_000
    const request = (check: boolean) => async (caller: number) => {
      await new Promise(setImmediate)
      const worked = performance.now() + WORK_MS
      while (performance.now() < worked) {} // the request's own work: parsing, authentication, checks
      const device = caller % DEVICES
      const batch = { device_id: device, received_at: Date.now(), points: [{ t: t++, data: { v: 1 } }] }
      await enqueuer.enqueue(batch, check ? admission(device) : undefined)
    }
    console.log(
      '| check | requests/s | takes per script call | Redis CPU per request | caller CPU per request |',
    )
    console.log('| --- | ---: | ---: | ---: | ---: |')
    await phase(request(true)) // warm-up (JIT, the script loaded): not reported
    for (const check of [true, false, false, true]) {
      const result = await phase(request(check))
      console.log(
        `| ${check ? 'on' : 'off'} | ${result.perSecond} | ${result.takesPerCall} | ${result.redisUs} µs | ${result.ownUs} µs |`,
      )
    }
    await enqueuer.close()
    await limiter.close()
  }
} finally {
  redis.disconnect()
  await server.dispose()
}
