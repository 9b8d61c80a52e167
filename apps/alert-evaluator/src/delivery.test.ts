import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createAlertRulesRepository, createAlertStatesRepository } from '@iotflow/db'
import { bullPrefix, createRedisConnection, queueCatalog, type RedisConnection } from '@iotflow/queue'
import { createLogger } from '@iotflow/runtime'
import { createTestDatabase, serviceUrls, type TestDatabase, waitFor } from '@iotflow/testkit'
import { useTestRedis } from '@iotflow/testkit/use-test-redis'
import { Queue } from 'bullmq'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AlertDelivery, startAlertDelivery } from './delivery.js'

/** The delivery worker on the real Redis and PostgreSQL, sending to an HTTP server that stands in for Alertmanager. */
const redis = useTestRedis('alert-deliver')
let db: TestDatabase
let worker: RedisConnection
let queue: Queue
let delivery: AlertDelivery
const received: { labels: Record<string, string> }[] = []
const alertmanager = createServer((request, response) => {
  const chunks: Buffer[] = []
  request.on('data', (chunk: Buffer) => chunks.push(chunk))
  request.on('end', () => {
    received.push(...(JSON.parse(Buffer.concat(chunks).toString()) as typeof received))
    response.writeHead(200).end()
  })
})

beforeAll(async () => {
  db = await createTestDatabase()
  await new Promise<void>((resolve) => alertmanager.listen(0, '127.0.0.1', resolve))
  worker = createRedisConnection(serviceUrls.redis, 'worker')
  queue = new Queue(queueCatalog.alertDeliver.name, {
    connection: redis.redis(),
    prefix: bullPrefix(redis.prefix),
  })
  delivery = startAlertDelivery({
    connection: worker,
    queuePrefix: redis.prefix,
    states: createAlertStatesRepository(db.sql),
    rules: createAlertRulesRepository(db.sql),
    webhookTimeoutMs: 2_000,
    alertmanagerUrl: `http://127.0.0.1:${(alertmanager.address() as AddressInfo).port}/`,
    timeoutMs: 2_000,
    resendMs: 3_600_000,
    logger: createLogger('alert-evaluator', 'silent'),
  })
})

afterAll(async () => {
  await delivery?.close()
  await queue?.close()
  await worker?.quit()
  alertmanager.closeAllConnections()
  alertmanager.close()
  await db?.drop()
})

const { jobName, options } = queueCatalog.alertDeliver

describe('an alert-deliver job entering the delivery worker', () => {
  it('is delivered when its data is what the queue schema says', async () => {
    const alert = { labels: { alertname: 'hot', device_id: '1' }, startsAt: new Date().toISOString() }
    await queue.add(jobName, { alerts: [alert] }, options)
    await waitFor(() => received.some((a) => a.labels.alertname === 'hot'), {
      what: 'the alert at Alertmanager',
    })
  })

  it('fails for good on its first attempt when its data matches no schema, naming where, and sends nothing', async () => {
    const job = await queue.add(jobName, { target: 'pager', to: 'ops' }, options)
    const failed = await waitFor(
      async () => {
        const state = await queue.getJobState(job.id as string)
        return state === 'failed' && queue.getJob(job.id as string)
      },
      { what: 'the invalid job in the failed set' },
    )
    expect(failed?.attemptsMade).toBe(1) // 15 attempts allowed: none spent retrying it
    expect(failed?.failedReason).toMatch(/^a alert-deliver job's data does not match its schema: /)
    expect(received.map((a) => a.labels.alertname)).toEqual(['hot'])
  })
})
