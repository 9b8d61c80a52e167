import type { NewBatch } from '@iotflow/queue'
import { runInSpan, spanAttributes, traceparentOf, tracer } from '@iotflow/tracing'
import { type Attributes, type Context, SpanKind, trace } from '@opentelemetry/api'

type Queued = { batchId: string }[]

/**
 * Queues device batches under an `enqueue` span, child of the request's (or MQTT message's) span
 * `parent`, and puts that span's `traceparent` in each batch when it is sampled, so each writer's
 * batch write can link to it. Without a parent (tracing off) it only queues: no span, nothing
 * added to the job.
 */
export async function enqueueTraced(
  parent: Context | undefined,
  batches: NewBatch[],
  queue: (batches: NewBatch[]) => Promise<Queued>,
): Promise<Queued> {
  if (parent === undefined) return queue(batches)
  const attributes: Attributes = {
    [spanAttributes.points]: batches.reduce((sum, batch) => sum + batch.points.length, 0),
  }
  if (batches.length === 1) attributes[spanAttributes.deviceId] = batches[0]?.device_id
  else attributes[spanAttributes.deviceIds] = batches.map((batch) => batch.device_id)
  const request = trace.getSpan(parent)
  request?.setAttributes(attributes)
  const span = tracer().startSpan('enqueue', { kind: SpanKind.PRODUCER, attributes }, parent)
  const traceparent = traceparentOf(span)
  const carried = traceparent ? batches.map((batch) => ({ ...batch, traceparents: [traceparent] })) : batches
  return runInSpan(span, async () => {
    const queued = await queue(carried)
    const batchId = queued[0]?.batchId
    if (batchId !== undefined) {
      span.setAttribute(spanAttributes.batchId, batchId)
      request?.setAttribute(spanAttributes.batchId, batchId)
    }
    return queued
  })
}
