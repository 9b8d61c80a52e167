import { pointCount, type StoreBatchPayload } from '@iotflow/contracts'
import { linkFromTraceparent, runInSpan, spanAttributes, tracer } from '@iotflow/tracing'
import { type Link, SpanKind } from '@opentelemetry/api'

/**
 * Runs a writer's batch write under a span LINKED to the enqueue span of every traced request it
 * stores (a batch gathers many jobs, and a job many requests: links, not one parent), each link
 * naming that request's device, batch id and points. The store call is a child of it
 * (withChildSpan). When no device batch carries a `traceparent` (tracing off, or nothing sampled),
 * there is no span: the write just runs.
 */
export function withBatchWriteSpan<T>(
  queueName: string,
  payloads: StoreBatchPayload[],
  write: () => Promise<T>,
): Promise<T> {
  const links: Link[] = []
  for (const payload of payloads) {
    for (const batch of payload.batches) {
      if (batch.traceparents === undefined) continue
      const attributes = {
        [spanAttributes.deviceId]: batch.device_id,
        [spanAttributes.batchId]: payload.batch_id,
        [spanAttributes.points]: pointCount(batch),
      }
      for (const traceparent of batch.traceparents) {
        const link = linkFromTraceparent(traceparent, attributes)
        if (link) links.push(link)
      }
    }
  }
  if (links.length === 0) return write()
  let points = 0
  for (const payload of payloads) for (const batch of payload.batches) points += pointCount(batch)
  const attributes = {
    [spanAttributes.queue]: queueName,
    [spanAttributes.jobs]: payloads.length,
    [spanAttributes.points]: points,
    [spanAttributes.batchIds]: payloads.map((payload) => payload.batch_id),
  }
  return tracer().startActiveSpan(
    `write ${queueName} batch`,
    { kind: SpanKind.CONSUMER, links, attributes },
    (span) => runInSpan(span, write),
  )
}
