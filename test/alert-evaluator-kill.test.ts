import { freePort, serviceUrls, uniqueName, waitFor } from '@iotflow/testkit'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { useAlertingFixture } from './support/alerting.js'
import { type AppProcess, spawnApp } from './support/app-process.js'
import { startWebhookReceiver } from './support/webhook-receiver.js'

/**
 * SIGKILL the alert evaluator (the built app, in a process of its own) while it judges batches
 * that cross a threshold, then start it again: every (rule, device) makes exactly one transition
 * and the receiver behind a real Alertmanager hears exactly one notification of it, firing and
 * then resolved; so does the rule's webhook (one delivery per transition id: a delivery cut by the
 * kill after the receiver had it is sent again with the same X-IoTFlow-Delivery). The entries the
 * killed evaluator held stay pending in the alert stream's consumer group; the restarted one (under
 * a new consumer name) takes them over once idle for WRITER_LOCK_DURATION_MS (XAUTOCLAIM).
 */
const DEVICES = 60
const fixture = useAlertingFixture()
let evaluator: AppProcess | undefined
let webhook: Awaited<ReturnType<typeof startWebhookReceiver>>

beforeAll(async () => {
  webhook = await startWebhookReceiver()
})

afterAll(async () => {
  await evaluator?.stop('SIGKILL')
  await webhook?.close()
})

/** Starts the evaluator and resolves once it is ready. */
async function startEvaluator(): Promise<AppProcess> {
  const port = await freePort()
  const app = spawnApp('alert-evaluator', {
    REDIS_URL: serviceUrls.redis,
    QUEUE_PREFIX: fixture.pipeline.queuePrefix,
    DATABASE_URL: fixture.db.url,
    MIGRATE_ON_START: 'false',
    HEALTH_PORT: String(port),
    ALERTMANAGER_URL: fixture.alertmanager.url,
  })
  await waitFor(
    async () => {
      if (!app.running()) throw new Error(`the evaluator exited:\n${app.output()}`)
      return (await fetch(`http://127.0.0.1:${port}/health/ready`)).ok
    },
    { timeoutMs: 30_000, what: 'the evaluator to be ready' },
  )
  return app
}

const transitions = async () =>
  (await fixture.db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM alert_transitions`)[0]?.n ?? 0

/**
 * Sends each device one batch, one request after another, kills the evaluator as soon as the first
 * transition is stored (batches are then being judged, some committed and not yet completed, some
 * not yet taken), sends the rest, and starts it again.
 */
async function sendAndKillMidway(devices: { apiKey: string }[], points: [number, number][]) {
  const before = await transitions()
  evaluator = await startEvaluator()
  const sent = (async () => {
    for (const device of devices) {
      const body = { points: points.map(([t, temperature]) => ({ timestamp: t, data: { temperature } })) }
      expect((await fixture.pipeline.send(device.apiKey, body)).status).toBe(202)
    }
  })()
  await waitFor(async () => (await transitions()) > before, {
    timeoutMs: 30_000,
    intervalMs: 5,
    what: 'a first transition',
  })
  await evaluator.stop('SIGKILL')
  const atKill = (await transitions()) - before
  await sent
  evaluator = await startEvaluator()
  return atKill
}

it('makes one transition and one notification per crossing across a SIGKILL of the evaluator', {
  timeout: 180_000,
}, async () => {
  const secret = 'the-kill-test-webhook-secret'
  webhook.setSecret('/hook', secret)
  await fixture.createRule({
    name: uniqueName('killed'),
    field: 'temperature',
    condition: '>',
    threshold: 30,
    webhook_url: webhook.urlFor('/hook'),
    webhook_secret: secret,
  })
  const devices = await Promise.all(Array.from({ length: DEVICES }, () => fixture.pipeline.registerDevice()))
  const everyDevice = (statuses: string[]) => () =>
    devices.every((d) => JSON.stringify(fixture.receiver.statusesOf(d.id)) === JSON.stringify(statuses))
  const T0 = Date.now() - 60_000

  const firedAtKill = await sendAndKillMidway(devices, [
    [T0, 20],
    [T0 + 1000, 40],
  ])
  expect(firedAtKill).toBeLessThan(DEVICES) // killed in the middle, not after
  await waitFor(everyDevice(['firing']), { timeoutMs: 120_000, what: 'one firing notification per device' })

  // The restarted evaluator resolves them all, once each.
  for (const device of devices) {
    const body = { points: [{ timestamp: T0 + 2000, data: { temperature: 10 } }] }
    expect((await fixture.pipeline.send(device.apiKey, body)).status).toBe(202)
  }
  await waitFor(everyDevice(['firing', 'resolved']), {
    timeoutMs: 30_000,
    what: 'one resolved notification per device',
  })
  // The transitions are stored once each, and nothing more is heard.
  expect(await transitions()).toBe(2 * DEVICES)
  await new Promise((resolve) => setTimeout(resolve, 2000))
  expect(devices.every((d) => fixture.receiver.statusesOf(d.id).length === 2)).toBe(true)
  expect(fixture.receiver.alerts).toHaveLength(2 * DEVICES)

  // At the webhook: every transition delivered, signed, under its own id, once.
  const ids = (await fixture.db.sql<{ id: string }[]>`SELECT id FROM alert_transitions`).map((r) => r.id)
  await waitFor(() => new Set(webhook.deliveries.map((d) => d.deliveryId)).size === ids.length, {
    timeoutMs: 30_000,
    what: 'one webhook delivery per transition',
  })
  expect(webhook.deliveries.every((d) => d.signed)).toBe(true)
  const byId = new Map(webhook.deliveries.map((d) => [d.deliveryId, d.notice]))
  expect([...byId.keys()].sort()).toEqual(ids.map(String).sort())
  for (const device of devices) {
    const states = [...byId.values()].filter((n) => n.device_id === device.id).map((n) => n.state)
    expect(states).toEqual(['firing', 'resolved'])
  }
  // Sent again only when the kill cut a delivery the receiver had already taken (same id).
  console.log(`webhook: ${webhook.deliveries.length} request(s) for ${ids.length} transitions`)
  expect(webhook.deliveries.length - ids.length).toBeLessThanOrEqual(4)
})
