import { type Span, SpanStatusCode } from '@opentelemetry/api'

/** Runs `work`, marks `span` failed if it throws, and ends the span either way. */
export async function runInSpan<T>(span: Span, work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (error) {
    span.recordException(error as Error)
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message })
    throw error
  } finally {
    span.end()
  }
}
