import type { Metrics, Transport } from './registry.js'

/**
 * Why a message was refused; the HTTP gateway derives it from its status code, except `backlog`
 * (a 503 because the queue backlog is over its limit) and `overloaded` (a 503 because the gateway
 * sheds load), which the refusing hook names itself.
 */
export type RefusalReason =
  | 'invalid'
  | 'unauthenticated'
  | 'forbidden'
  | 'too_large'
  | 'unsupported_media_type'
  | 'rate_limited'
  | 'queue_unavailable'
  | 'backlog'
  | 'overloaded'
  | 'error'

const REASON_BY_STATUS: Record<number, RefusalReason> = {
  400: 'invalid',
  401: 'unauthenticated',
  403: 'forbidden',
  413: 'too_large',
  415: 'unsupported_media_type',
  422: 'invalid',
  429: 'rate_limited',
  503: 'queue_unavailable',
}

export function refusalReasonOf(statusCode: number): RefusalReason {
  return REASON_BY_STATUS[statusCode] ?? 'error'
}

/** Records one telemetry message: accepted, or refused with its reason. Shared by gateway and bridge. */
export function recordIngest(
  metrics: Metrics,
  transport: Transport,
  outcome: 'accepted' | RefusalReason,
  points: number,
): void {
  metrics.ingestMessages.inc({ transport, outcome })
  if (outcome === 'accepted') metrics.pointsAccepted.inc({ transport }, points)
  else metrics.pointsRefused.inc({ transport, reason: outcome }, Math.max(points, 1))
}

/** Points in a telemetry body of any accepted shape: one point, `{points: [...]}` or a bare array. */
export function pointsInBody(body: unknown): number {
  if (Array.isArray(body)) return body.length
  if (body && typeof body === 'object') {
    const points = (body as { points?: unknown }).points
    return Array.isArray(points) ? points.length : 1
  }
  return 0
}
