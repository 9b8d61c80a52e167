import { runInSpan, tracer, tracingEnabled } from '@iotflow/tracing'
import { type Context, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api'

/**
 * Runs the handling of one MQTT message under a consumer span (the message's trace, as the HTTP
 * span is a request's), handing `work` the context its enqueue span is a child of. When tracing is
 * off, just runs it.
 */
export function withMessageSpan<T>(topic: string, work: (trace?: Context) => Promise<T>): Promise<T> {
  if (!tracingEnabled()) return work(undefined)
  const span = tracer().startSpan('mqtt message', {
    kind: SpanKind.CONSUMER,
    attributes: { 'messaging.system': 'mqtt', 'messaging.destination.name': topic },
  })
  return runInSpan(span, () => work(trace.setSpan(ROOT_CONTEXT, span)))
}
