import { setTimeout as sleep } from 'node:timers/promises'
import { uniqueName, waitFor } from '@iotflow/testkit'
import { beforeAll, describe, expect, it } from 'vitest'
import { useAlertingFixture } from './support/alerting.js'
import { ADMIN_TOKEN } from './support/pipeline.js'

/**
 * no_data rules against the real services and a real Alertmanager: the silence is found by the
 * evaluators' clock (PostgreSQL's), judged from the points' own times, with two evaluators
 * looking at once; each transition is made and notified once.
 */
const fixture = useAlertingFixture()
const SILENCE_S = 2
const devices: Record<string, { id: number; apiKey: string }> = {}

beforeAll(async () => {
  for (const name of ['silent', 'backlog']) {
    devices[name] = await fixture.pipeline.registerDevice()
    await fixture.createRule({
      name: uniqueName(`no-data-${name}`),
      kind: 'no_data',
      no_data_seconds: SILENCE_S,
      severity: 'critical',
      labels: { case: name },
      device_ids: [devices[name]?.id],
    })
  }
  // Two evaluators on the same queue and database: both look for silences every 100 ms.
  for (let i = 0; i < 2; i++)
    await fixture.pipeline.startAlertEvaluator({
      ALERTMANAGER_URL: fixture.alertmanager.url,
      ALERT_NO_DATA_CHECK_MS: '100',
    })
})

async function send(name: string, timestamps: number[]) {
  const body = { points: timestamps.map((timestamp) => ({ timestamp, data: { temperature: 20 } })) }
  expect((await fixture.pipeline.send(devices[name]?.apiKey, body)).status).toBe(202)
}

type Transition = { from: string; to: string; at: string; value: number | null }
async function historyOf(name: string): Promise<Transition[]> {
  const response = await fetch(
    `${fixture.pipeline.baseUrl}/api/v1/alerts/history?device_id=${devices[name]?.id}`,
    { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } },
  )
  return ((await response.json()) as { transitions: Transition[] }).transitions.reverse()
}
const steps = async (name: string) => (await historyOf(name)).map((t) => `${t.from}>${t.to}`)
async function waitForSteps(name: string, expected: string[], timeoutMs = 15_000) {
  let seen: string[] = []
  await waitFor(
    async () => {
      seen = await steps(name)
      return JSON.stringify(seen) === JSON.stringify(expected)
    },
    { timeoutMs, what: () => `the history of ${name} to be ${expected}, got ${seen}` },
  )
}
const notified = (name: string) => fixture.receiver.statusesOf(devices[name]?.id as number)
const waitForNotified = (name: string, expected: string[]) =>
  waitFor(() => JSON.stringify(notified(name)) === JSON.stringify(expected), {
    timeoutMs: 15_000,
    what: () => `notifications ${expected} for ${name}, got ${notified(name)}`,
  })

describe('no_data alerts', () => {
  it('fires after no_data_seconds of silence and resolves on the next point, once each', {
    timeout: 60_000,
  }, async () => {
    const first = Date.now()
    await send('silent', [first - 500, first])
    await sleep(1000)
    // Still within the silence allowed: nothing yet.
    expect(await steps('silent')).toEqual([])
    await waitForSteps('silent', ['inactive>firing'])
    const [fired] = await historyOf('silent')
    // Fired at the moment the silence reached no_data_seconds, by the newest point's own time.
    expect(Date.parse(fired?.at ?? '')).toBe(first + SILENCE_S * 1000)
    expect(fired?.value).toBeNull()
    await waitForNotified('silent', ['firing'])
    const alert = fixture.receiver.alerts.find((a) => a.labels.device_id === String(devices.silent?.id))
    expect(alert?.labels).toMatchObject({ case: 'silent', severity: 'critical' })
    expect(Date.parse(alert?.startsAt ?? '')).toBe(first + SILENCE_S * 1000)

    const back = Date.now()
    await send('silent', [back])
    await waitForSteps('silent', ['inactive>firing', 'firing>resolved'])
    expect(Date.parse((await historyOf('silent'))[1]?.at ?? '')).toBe(back)
    await waitForNotified('silent', ['firing', 'resolved'])

    // Silent again: it fires again, once; and nothing else arrives in between.
    await waitForSteps('silent', ['inactive>firing', 'firing>resolved', 'resolved>firing'])
    await waitForNotified('silent', ['firing', 'resolved', 'firing'])
    await sleep(1000)
    expect(await steps('silent')).toEqual(['inactive>firing', 'firing>resolved', 'resolved>firing'])
    expect(notified('silent')).toEqual(['firing', 'resolved', 'firing'])
  })

  it('is not resolved by points from within the silence (a backlog emptied late), only by a newer one', {
    timeout: 60_000,
  }, async () => {
    const first = Date.now() - 10_000
    await send('backlog', [first])
    // Judged from the point's own time: ten seconds old, so the silence is already due.
    await waitForSteps('backlog', ['inactive>firing'])
    // Points from before the moment it fired (first + 2 s) show no data after it: nothing changes.
    await send('backlog', [first + 1000, first + 1500])
    await sleep(1000)
    expect(await steps('backlog')).toEqual(['inactive>firing'])
    await send('backlog', [Date.now()])
    await waitForSteps('backlog', ['inactive>firing', 'firing>resolved'])
    await waitForNotified('backlog', ['firing', 'resolved'])
  })
})
