import type { AlertmanagerAlert } from '@iotflow/contracts'
import type { NotifiableTransition } from '@iotflow/db'
import { UnrecoverableError } from 'bullmq'

const iso = (time: number) => new Date(time).toISOString()

/** What identifies an alert at Alertmanager: the rule's labels, then the three of the contract. */
export function alertLabels(
  alert: Pick<NotifiableTransition, 'rule_name' | 'device_id' | 'severity' | 'labels'>,
): Record<string, string> {
  return {
    ...alert.labels,
    alertname: alert.rule_name,
    device_id: String(alert.device_id),
    severity: alert.severity,
  }
}

/**
 * A transition to firing or to resolved as Alertmanager takes it; undefined for the others
 * (pending is ours alone, as it is Prometheus's). A firing alert has no endsAt: Alertmanager holds
 * it for its resolve_timeout, and the evaluator sends every firing alert again well within it. A
 * resolved one ends at its point's time, or now if that is still ahead of this clock.
 */
export function alertmanagerAlert(
  transition: NotifiableTransition,
  now = Date.now(),
): AlertmanagerAlert | undefined {
  const labels = alertLabels(transition)
  // A no_data alert has no value.
  const annotations: Record<string, string> =
    transition.value === null ? {} : { value: String(transition.value) }
  if (transition.to === 'firing') return { labels, annotations, startsAt: iso(transition.at) }
  if (transition.to !== 'resolved') return undefined
  return {
    labels,
    annotations,
    startsAt: iso(transition.firing_since ?? transition.at),
    endsAt: iso(Math.min(transition.at, now)),
  }
}

/**
 * Posts alerts to Alertmanager's v2 API. A refusal of the alerts themselves (4xx other than 429)
 * can never succeed: it fails for good into the dead-letter set; anything else is retried.
 */
export async function postAlerts(baseUrl: string, alerts: AlertmanagerAlert[], timeoutMs: number) {
  const response = await fetch(new URL('/api/v2/alerts', baseUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(alerts),
    signal: AbortSignal.timeout(timeoutMs),
  })
  if (response.ok) {
    await response.body?.cancel()
    return
  }
  const message = `Alertmanager answered ${response.status}: ${(await response.text()).slice(0, 500)}`
  if (response.status >= 400 && response.status < 500 && response.status !== 429)
    throw new UnrecoverableError(message)
  throw new Error(message)
}
