import { setTimeout as sleep } from 'node:timers/promises'
import { uniqueName, waitFor } from '@iotflow/testkit'
import { beforeAll, describe, expect, it } from 'vitest'
import { useAlertingFixture } from './support/alerting.js'
import { dlqReplay } from './support/dlq-replay.js'
import { ADMIN_TOKEN } from './support/pipeline.js'
import { startWebhookReceiver } from './support/webhook-receiver.js'

/**
 * Webhooks per rule against the real services: each transition to firing or resolved is posted to
 * the rule's webhook, a plain node:http server of the test's that checks X-IoTFlow-Signature with
 * its own HMAC code; retried while it is down, dead-lettered when it refuses, replayable.
 */
const fixture = useAlertingFixture()
let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>
const admin = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }
const devices: Record<string, { id: number; apiKey: string }> = {}
const rules: Record<string, number> = {}
const secrets: Record<string, string> = {}
const T0 = Date.now() - 60_000

async function api(method: string, path: string, body?: unknown) {
  const response = await fetch(`${fixture.pipeline.baseUrl}${path}`, {
    method,
    headers: admin,
    ...(body !== undefined && { body: JSON.stringify(body) }),
  })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

/** Creates a case's device and its rule `> 30` with a webhook at /hooks/<name>. */
async function createCase(name: string, webhookSecret?: string) {
  devices[name] = await fixture.pipeline.registerDevice()
  const created = await api('POST', '/api/v1/alert-rules', {
    name: uniqueName(name),
    field: 'temperature',
    condition: '>',
    threshold: 30,
    device_ids: [devices[name]?.id],
    webhook_url: receiver.urlFor(`/hooks/${name}`),
    ...(webhookSecret && { webhook_secret: webhookSecret }),
  })
  expect(created.status).toBe(201)
  rules[name] = (created.body.rule as { id: number }).id
  secrets[name] = created.body.webhook_secret as string
}

beforeAll(async () => {
  receiver = await startWebhookReceiver()
  await createCase('crossing')
  await createCase('outage', 'a-secret-the-operator-chose')
  await createCase('refused', 'the-secret-iotflow-signs-with')
  for (const name of ['crossing', 'outage']) receiver.setSecret(`/hooks/${name}`, secrets[name] as string)
  // The receiver of `refused` knows another secret: it answers 401.
  receiver.setSecret('/hooks/refused', 'a-secret-iotflow-does-not-know')
  await fixture.pipeline.startAlertEvaluator({ ALERTMANAGER_URL: fixture.alertmanager.url })
  return () => receiver.close()
})

async function send(name: string, points: [number, number][]) {
  const body = {
    points: points.map(([s, temperature]) => ({ timestamp: T0 + s * 1000, data: { temperature } })),
  }
  expect((await fixture.pipeline.send(devices[name]?.apiKey, body)).status).toBe(202)
}
const at = (name: string) => receiver.statesAt(`/hooks/${name}`)
const waitForHooks = (name: string, expected: string[], timeoutMs = 15_000) =>
  waitFor(() => JSON.stringify(at(name)) === JSON.stringify(expected), {
    timeoutMs,
    what: () => `webhook deliveries ${expected} for ${name}, got ${at(name)}`,
  })

describe('webhooks per rule', () => {
  it('shows a generated secret once, and never returns it afterwards', async () => {
    expect(secrets.crossing).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(secrets.outage).toBe('a-secret-the-operator-chose')
    const read = await api('GET', `/api/v1/alert-rules/${rules.crossing}`)
    expect(read.body.rule).toMatchObject({ webhook_url: receiver.urlFor('/hooks/crossing') })
    const list = await api('GET', '/api/v1/alert-rules')
    for (const shown of [read, list]) expect(JSON.stringify(shown.body)).not.toContain('secret')
    // A secret without a webhook is refused, naming the field.
    const orphan = await api('POST', '/api/v1/alert-rules', {
      name: uniqueName('orphan'),
      field: 'temperature',
      condition: '>',
      threshold: 1,
      webhook_secret: 'a-secret-with-no-webhook',
    })
    expect(orphan.status).toBe(400)
    expect(JSON.stringify(orphan.body)).toContain('body.webhook_secret')
  })

  it('generates a secret when a change adds a webhook, keeps or replaces it after, and drops it with the webhook', async () => {
    const created = await api('POST', '/api/v1/alert-rules', {
      name: uniqueName('patched'),
      field: 'temperature',
      condition: '>',
      threshold: 1,
      device_ids: [1_000_000],
    })
    expect(created.body.webhook_secret).toBeUndefined()
    const path = `/api/v1/alert-rules/${(created.body.rule as { id: number }).id}`
    const added = await api('PATCH', path, { webhook_url: 'http://127.0.0.1:9/hook' })
    expect(added.status).toBe(200)
    expect(added.body.webhook_secret).toMatch(/^[A-Za-z0-9_-]{43}$/)
    const renamed = await api('PATCH', path, { severity: 'critical' })
    const rotated = await api('PATCH', path, { webhook_secret: 'a-new-secret-of-mine' })
    for (const kept of [renamed, rotated]) expect(JSON.stringify(kept.body)).not.toContain('secret')
    const removed = await api('PATCH', path, { webhook_url: null })
    expect(removed.body.rule).toMatchObject({ webhook_url: null })
    const orphan = await api('PATCH', path, { webhook_secret: 'a-new-secret-of-mine' })
    expect(orphan.status).toBe(400)
    expect(JSON.stringify(orphan.body)).toContain('body.webhook_secret')
  })

  it('posts each transition once, as signed JSON, with the transition’s id', async () => {
    await send('crossing', [
      [0, 20],
      [1, 31],
    ])
    await send('crossing', [[2, 29]])
    await waitForHooks('crossing', ['firing', 'resolved'])
    const history = await api('GET', `/api/v1/alerts/history?rule_id=${rules.crossing}`)
    const ids = (history.body.transitions as { id: number }[]).map((t) => t.id).reverse()
    const delivered = receiver.deliveries.filter((d) => d.path === '/hooks/crossing')
    expect(delivered.map((d) => [d.deliveryId, d.notice.transition_id])).toEqual(
      ids.map((id) => [String(id), id]),
    )
    expect(delivered[0]?.notice).toEqual({
      transition_id: ids[0],
      rule_id: rules.crossing,
      rule: expect.stringMatching(/^crossing_/),
      device_id: devices.crossing?.id,
      state: 'firing',
      at: new Date(T0 + 1000).toISOString(),
      value: 31,
      severity: 'warning',
      labels: {},
    })
    await sleep(1000)
    expect(receiver.deliveries.filter((d) => d.path === '/hooks/crossing')).toHaveLength(2)
  })

  it('delivers what fired while the receiver was down once it is back', { timeout: 60_000 }, async () => {
    await receiver.stop()
    await send('outage', [[0, 45]])
    await waitFor(async () => {
      const history = await api('GET', `/api/v1/alerts/history?rule_id=${rules.outage}`)
      return (history.body.transitions as unknown[]).length === 1
    })
    await sleep(4_000)
    await receiver.start()
    expect(at('outage')).toEqual([])
    await waitForHooks('outage', ['firing'], 40_000)
  })

  it('dead-letters a delivery the receiver refuses (bad signature: 401) at once, and replays it', {
    timeout: 60_000,
  }, async () => {
    await send('refused', [[0, 50]])
    await waitFor(() => receiver.deliveries.some((d) => d.path === '/hooks/refused'), {
      what: 'the refused delivery',
    })
    const listed = await waitForDeadLetter()
    expect(listed).toMatch(
      new RegExp(`alert-deliver job webhook-transition-\\d+  webhook of rule ${rules.refused}`),
    )
    expect(listed).toContain('after 1 attempt(s)')
    expect(receiver.deliveries.filter((d) => d.path === '/hooks/refused' && !d.signed)).toHaveLength(1)
    // The receiver learns the right secret; the operator replays the dead letter.
    receiver.setSecret('/hooks/refused', 'the-secret-iotflow-signs-with')
    const replayed = dlqReplay(fixture.pipeline.queuePrefix, '--queue', 'alert-deliver', '--all')
    expect(replayed.status, replayed.stderr).toBe(0)
    expect(replayed.stdout).toContain('1 job(s) replayed')
    await waitForHooks('refused', ['firing'])
  })
})

async function waitForDeadLetter(): Promise<string> {
  let listed = ''
  await waitFor(
    () => {
      listed = dlqReplay(fixture.pipeline.queuePrefix, '--queue', 'alert-deliver').stdout
      return listed.includes('webhook-transition')
    },
    { timeoutMs: 15_000, what: () => `a dead letter in alert-deliver, listed: ${listed}` },
  )
  return listed
}
