import { setTimeout as sleep } from 'node:timers/promises'
import type { AlertNotice } from '@iotflow/contracts'
import {
  bullPrefix,
  createAlertStreamDepths,
  createBatchEnqueuer,
  createRedisConnection,
  queueCatalog,
  queueLayout,
} from '@iotflow/queue'
import { ScrapedMetrics, serviceUrls, uniqueName, waitFor } from '@iotflow/testkit'
import { Queue } from 'bullmq'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { useAlertingFixture } from './support/alerting.js'
import { sharedBrokerUrl } from './support/mqtt.js'
import { ADMIN_TOKEN, type Pipeline } from './support/pipeline.js'

/**
 * Alerting end to end, against the real services and a real Prometheus Alertmanager whose webhook
 * is a plain HTTP server of the test's: telemetry in through the gateway, judged by the alert
 * evaluator, delivered to Alertmanager, notified to the fixture.receiver. Each case has a device and a rule
 * of its own, made before the evaluator starts (so it never judges a batch before it knows them).
 */
const fixture = useAlertingFixture()
let evaluator: Awaited<ReturnType<Pipeline['startAlertEvaluator']>>
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` }
const devices: Record<string, { id: number; apiKey: string }> = {}
const rules: Record<string, number> = {}
// Alerts on MQTT: a topic root of this file's own on the shared broker.
const topicRoot = uniqueName('iotflow')
let subscriber: MqttClient | undefined
const notices: { topic: string; notice: AlertNotice }[] = []

const cases = {
  crossing: {},
  hysteresis: { clear_threshold: 25 },
  holding: { for_seconds: 10 },
  late: {},
  redelivered: {},
  outage: {},
  'outage-resolved': {},
}

beforeAll(async () => {
  for (const [name, extra] of Object.entries(cases)) {
    devices[name] = await fixture.pipeline.registerDevice()
    rules[name] = await fixture.createRule({
      name: uniqueName(name),
      field: 'temperature',
      condition: '>',
      threshold: 30,
      severity: 'critical',
      labels: { case: name },
      device_ids: [devices[name]?.id],
      ...extra,
    })
  }
  subscriber = await mqtt.connectAsync(sharedBrokerUrl)
  subscriber.on('message', (topic, payload) =>
    notices.push({ topic, notice: JSON.parse(payload.toString()) }),
  )
  await subscriber.subscribeAsync([`${topicRoot}/alerts`, `${topicRoot}/devices/+/alerts`], { qos: 1 })
  evaluator = await fixture.pipeline.startAlertEvaluator({
    ALERTMANAGER_URL: fixture.alertmanager.url,
    MQTT_URL: sharedBrokerUrl,
    MQTT_TOPIC_ROOT: topicRoot,
  })
})

afterAll(async () => {
  await subscriber?.endAsync()
})

const T0 = Date.now() - 60_000
/** Sends points `[seconds after T0, temperature]` of a case's device as one batch. */
async function send(name: string, points: [number, number][]) {
  const body = {
    points: points.map(([s, temperature]) => ({ timestamp: T0 + s * 1000, data: { temperature } })),
  }
  const response = await fixture.pipeline.send(devices[name]?.apiKey, body)
  expect(response.status).toBe(202)
}

const get = async <T>(path: string) =>
  (await (await fetch(`${fixture.pipeline.baseUrl}${path}`, { headers: admin })).json()) as T
type Transition = { from: string; to: string; at: string; value: number }
/** The transitions of a case, oldest first, as `from>to`. */
const historyOf = async (name: string) =>
  (
    await get<{ transitions: Transition[] }>(`/api/v1/alerts/history?device_id=${devices[name]?.id}`)
  ).transitions
    .reverse()
    .map((t) => `${t.from}>${t.to}`)
async function waitForHistory(name: string, expected: string[]) {
  let seen: string[] = []
  await waitFor(
    async () => {
      seen = await historyOf(name)
      return JSON.stringify(seen) === JSON.stringify(expected)
    },
    { timeoutMs: 15_000, what: () => `the history of ${name} to be ${expected}, got ${seen}` },
  )
}
const waitForNotifications = (name: string, expected: string[], timeoutMs = 15_000) =>
  waitFor(
    () =>
      JSON.stringify(fixture.receiver.statusesOf(devices[name]?.id as number)) === JSON.stringify(expected),
    {
      timeoutMs,
      what: () =>
        `notifications ${expected} for ${name}, got ${fixture.receiver.statusesOf(devices[name]?.id as number)}`,
    },
  )

describe('threshold alerts through Alertmanager', () => {
  it('fires exactly once on a crossing and resolves once, with the contract’s labels, on Alertmanager and MQTT', async () => {
    await send('crossing', [
      [0, 20],
      [1, 31],
      [2, 35],
    ])
    await send('crossing', [[3, 33]])
    // Alertmanager is posted an alert's state when its delivery runs: had the resolving point been
    // judged first, it would hear of this firing resolved only (docs/alerts.md, Order).
    await waitForNotifications('crossing', ['firing'])
    await send('crossing', [[4, 29]])
    await waitForNotifications('crossing', ['firing', 'resolved'])
    await waitForHistory('crossing', ['inactive>firing', 'firing>resolved'])
    const firing = fixture.receiver.alerts.find((a) => a.labels.device_id === String(devices.crossing?.id))
    expect(firing?.labels).toMatchObject({
      alertname: expect.stringMatching(/^crossing_/),
      device_id: String(devices.crossing?.id),
      severity: 'critical',
      case: 'crossing',
    })
    expect(Date.parse(firing?.startsAt ?? '')).toBe(T0 + 1000)
    const resolved = fixture.receiver.alerts.find(
      (a) => a.labels.device_id === String(devices.crossing?.id) && a.status === 'resolved',
    )
    expect([Date.parse(resolved?.startsAt ?? ''), Date.parse(resolved?.endsAt ?? '')]).toEqual([
      T0 + 1000,
      T0 + 4000,
    ])
    const { alerts } = await get<{ alerts: { state: string; since: string; value: number }[] }>(
      `/api/v1/alerts?rule_id=${rules.crossing}`,
    )
    expect(alerts).toEqual([
      expect.objectContaining({ state: 'resolved', since: new Date(T0 + 4000).toISOString(), value: 29 }),
    ])
    // On MQTT too, on the device's topic and the fleet's, once each.
    const id = devices.crossing?.id as number
    const onTopic = (topic: string) =>
      notices.filter((n) => n.topic === topic && n.notice.device_id === id).map((n) => n.notice.state)
    await waitFor(() => onTopic(`${topicRoot}/alerts`).length === 2, { what: 'the MQTT notices' })
    expect(onTopic(`${topicRoot}/devices/${id}/alerts`)).toEqual(['firing', 'resolved'])
    expect(notices.find((n) => n.notice.device_id === id)?.notice).toMatchObject({
      rule_id: rules.crossing,
      state: 'firing',
      at: new Date(T0 + 1000).toISOString(),
      value: 31,
      severity: 'critical',
      labels: { case: 'crossing' },
    })
    // Nothing more arrives.
    await sleep(1500)
    expect(fixture.receiver.statusesOf(id)).toEqual(['firing', 'resolved'])
    expect(onTopic(`${topicRoot}/alerts`)).toEqual(['firing', 'resolved'])
  })

  it('holds hysteresis: under the threshold but above the clear threshold stays firing', async () => {
    await send('hysteresis', [
      [0, 31],
      [1, 28],
      [2, 26],
    ])
    await waitForHistory('hysteresis', ['inactive>firing'])
    await send('hysteresis', [[3, 25]])
    await waitForHistory('hysteresis', ['inactive>firing', 'firing>resolved'])
    await waitForNotifications('hysteresis', ['firing', 'resolved'])
  })

  it('fires only once the condition held for_seconds, by the points’ own times', async () => {
    await send('holding', [
      [0, 31],
      [5, 32],
    ])
    await waitForHistory('holding', ['inactive>pending'])
    const pending = await get<{ alerts: { device_id: number }[] }>(
      `/api/v1/alerts?state=pending&rule_id=${rules.holding}`,
    )
    expect(pending.alerts.map((a) => a.device_id)).toEqual([devices.holding?.id])
    await sleep(500)
    expect(fixture.receiver.statusesOf(devices.holding?.id as number)).toEqual([])
    await send('holding', [[10, 33]])
    await waitForHistory('holding', ['inactive>pending', 'pending>firing'])
    await waitForNotifications('holding', ['firing'])
  })

  it('lets late points change nothing', async () => {
    await send('late', [[10, 35]])
    await waitForHistory('late', ['inactive>firing'])
    // Older than the point that fired, and under the threshold: late, so it resolves nothing.
    await send('late', [[5, 10]])
    await send('late', [[11, 36]]) // newer: evaluated, still firing
    await waitFor(async () => {
      const { alerts } = await get<{ alerts: { value: number }[] }>(`/api/v1/alerts?rule_id=${rules.late}`)
      return alerts[0]?.value === 36
    })
    expect(await historyOf('late')).toEqual(['inactive>firing'])
    expect(fixture.receiver.statusesOf(devices.late?.id as number)).toEqual(['firing'])
  })

  it('makes no second transition and no second notification of a redelivered batch', async () => {
    const points: [number, number][] = [
      [0, 20],
      [1, 40],
    ]
    await send('redelivered', points)
    await waitForHistory('redelivered', ['inactive>firing'])
    await waitForNotifications('redelivered', ['firing'])
    // The same points queued again (as a redelivery after a crash hands a batch over again), through
    // the producers' own fan-out; no writer runs here, so only the evaluator takes its copy.
    const redis = createRedisConnection(serviceUrls.redis, 'producer')
    const enqueuer = createBatchEnqueuer(
      redis,
      queueLayout(fixture.pipeline.queuePrefix),
      {},
      { alertFanOut: () => true },
    )
    const depths = createAlertStreamDepths(redis, queueLayout(fixture.pipeline.queuePrefix))
    await enqueuer.enqueue({
      device_id: devices.redelivered?.id as number,
      received_at: Date.now(),
      points: points.map(([s, temperature]) => ({ t: T0 + s * 1000, data: { temperature } })),
    })
    await waitFor(
      async () => {
        const counts = (await depths.read())[queueCatalog.alertEvaluate.name]
        return counts && counts.waiting + counts.active + counts.delayed === 0
      },
      { what: 'the batch queued again to be judged' },
    )
    await sleep(1000)
    expect(await historyOf('redelivered')).toEqual(['inactive>firing'])
    expect(fixture.receiver.statusesOf(devices.redelivered?.id as number)).toEqual(['firing'])
    await enqueuer.close()
    await redis.quit()
  })

  it('delivers an alert that fired while Alertmanager was down for 30 s once it is back', {
    timeout: 150_000,
  }, async () => {
    await fixture.alertmanager.stop()
    await send('outage', [[0, 45]])
    await waitForHistory('outage', ['inactive>firing'])
    // Down 30 s from the moment it fired: the delivery's retries (1 s, 2 s, 4 s … jittered) fail.
    await sleep(30_000)
    expect(fixture.receiver.statusesOf(devices.outage?.id as number)).toEqual([])
    await fixture.alertmanager.start()
    // The next retry is at most about 32 s after the last failed one.
    await waitForNotifications('outage', ['firing'], 70_000)
  })

  it('ends with the alert resolved at Alertmanager, never active, when it fired and resolved while Alertmanager was down and the firing is retried last', {
    timeout: 120_000,
  }, async () => {
    const name = 'outage-resolved'
    const id = devices[name]?.id as number
    const redis = createRedisConnection(serviceUrls.redis, 'producer')
    const deliveries = new Queue(queueCatalog.alertDeliver.name, {
      connection: redis,
      prefix: bullPrefix(fixture.pipeline.queuePrefix),
    })
    await fixture.alertmanager.stop()
    await send(name, [[0, 45]])
    await send(name, [[1, 20]])
    await waitForHistory(name, ['inactive>firing', 'firing>resolved'])
    const [firingId, resolvedId] = (
      await get<{ transitions: { id: number }[] }>(`/api/v1/alerts/history?device_id=${id}`)
    ).transitions
      .map((t) => t.id)
      .reverse()
    const jobOf = async (transitionId: number | undefined) => {
      const job = await deliveries.getJob(`transition-${transitionId}`)
      if (!job) throw new Error(`no delivery job for transition ${transitionId}`)
      return job
    }
    // Both deliveries failed at least once and wait their backoff; the firing one is held back.
    await waitFor(
      async () =>
        (await (await jobOf(firingId)).isDelayed()) && (await (await jobOf(resolvedId)).isDelayed()),
      { what: 'both deliveries waiting to be retried' },
    )
    await (await jobOf(firingId)).changeDelay(600_000)
    await fixture.alertmanager.start()
    // From now on, Alertmanager's active alerts of the device are read every 50 ms.
    const seenActive: string[] = []
    let watching = true
    const watcher = (async () => {
      while (watching) {
        const filter = encodeURIComponent(`device_id="${id}"`)
        const response = await fetch(`${fixture.alertmanager.url}/api/v2/alerts?filter=${filter}`)
        const alerts = (await response.json()) as { status: { state: string } }[]
        seenActive.push(...alerts.map((a) => a.status.state))
        await sleep(50)
      }
    })()
    // The resolution is delivered first, then the firing, as a retry after the outage can order them.
    await (await jobOf(resolvedId)).promote().catch(() => undefined) // already running: as good
    await waitFor(async () => (await jobOf(resolvedId)).isCompleted(), { what: 'the resolution delivered' })
    await (await jobOf(firingId)).promote()
    await waitFor(async () => (await jobOf(firingId)).isCompleted(), { what: 'the late firing delivered' })
    await sleep(1500)
    watching = false
    await watcher
    expect(seenActive).toEqual([])
    // Both deliveries posted it resolved (Alertmanager was restarted: its counters are this test's).
    const received = new ScrapedMetrics(await (await fetch(`${fixture.alertmanager.url}/metrics`)).text())
    expect(
      received.value('alertmanager_alerts_received_total', { status: 'resolved' }),
    ).toBeGreaterThanOrEqual(2)
    // So Alertmanager never notified it firing.
    expect(fixture.receiver.statusesOf(id)).toEqual([])
    await deliveries.close()
    await redis.quit()
  })

  it('exposes the firing alerts per rule and the evaluation lag', async () => {
    const metrics = new ScrapedMetrics(await evaluator.metrics.registry.metrics())
    // Of the cases above, these end firing (the others resolved or never fired).
    for (const name of ['holding', 'late', 'redelivered', 'outage']) {
      const rule = fixture.receiver.alerts.find((a) => a.labels.case === name)?.labels.alertname as string
      expect(metrics.value('iotflow_alerts_firing', { rule, severity: 'critical' }), name).toBe(1)
    }
    const crossing = fixture.receiver.alerts.find((a) => a.labels.case === 'crossing')?.labels
      .alertname as string
    expect(metrics.value('iotflow_alerts_firing', { rule: crossing })).toBe(0)
    expect(metrics.value('iotflow_alert_evaluation_lag_seconds_count')).toBeGreaterThanOrEqual(12)
  })
})
