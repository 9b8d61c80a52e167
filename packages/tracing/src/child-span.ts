import { type Attributes, SpanKind, trace } from '@opentelemetry/api'
import { runInSpan } from './run-in-span.js'
import { tracer } from './tracer.js'

/**
 * Runs `work` under a client span named `name`, child of the active span, when that span is
 * recorded (a traced batch write); otherwise just runs it, so a store call never starts a trace of
 * its own. `attributes` is called only when the span is made.
 */
export async function withChildSpan<T>(
  name: string,
  attributes: () => Attributes,
  work: () => Promise<T>,
): Promise<T> {
  if (!trace.getActiveSpan()?.isRecording()) return work()
  return tracer().startActiveSpan(name, { kind: SpanKind.CLIENT, attributes: attributes() }, (span) =>
    runInSpan(span, work),
  )
}
