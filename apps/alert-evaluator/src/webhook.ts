import { createHmac } from 'node:crypto'
import { UnrecoverableError } from 'bullmq'

/**
 * `X-IoTFlow-Signature`: `sha256=` and the hex HMAC-SHA256, under the rule's secret, of the
 * timestamp (`X-IoTFlow-Timestamp`, Unix seconds), a dot, and the body exactly as sent. The
 * timestamp inside the signature lets a receiver refuse a replayed request (docs/alerts.md).
 */
export function webhookSignature(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`
}

export interface WebhookRequest {
  url: string
  secret: string
  body: string
  transitionId: number
  timeoutMs: number
}

/**
 * Posts one notification to a rule's webhook, signed at the moment it is sent (a retry carries a
 * fresh timestamp). A 2xx delivers it; a refusal (4xx other than 408 and 429) fails for good into
 * the dead-letter set, as does a redirect (not followed); anything else (no answer, 5xx) is retried.
 */
export async function postWebhook(request: WebhookRequest): Promise<void> {
  const timestamp = Math.floor(Date.now() / 1000)
  const response = await fetch(request.url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': 'iotflow-alert-evaluator',
      'x-iotflow-delivery': String(request.transitionId),
      'x-iotflow-timestamp': String(timestamp),
      'x-iotflow-signature': webhookSignature(request.secret, timestamp, request.body),
    },
    body: request.body,
    signal: AbortSignal.timeout(request.timeoutMs),
    redirect: 'manual',
  })
  await response.body?.cancel()
  if (response.ok) return
  const message = `webhook ${request.url} answered ${response.status}`
  // Redirects are not followed (the URL is the operator's to fix): a refusal too.
  if (response.status < 500 && response.status !== 408 && response.status !== 429)
    throw new UnrecoverableError(message)
  throw new Error(message)
}
