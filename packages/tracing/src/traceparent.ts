import { type Attributes, isSpanContextValid, type Link, type Span, TraceFlags } from '@opentelemetry/api'

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/**
 * The W3C `traceparent` of a span, or undefined when it is not sampled: only sampled requests put
 * their context in the job, so an untraced job is byte for byte what it was before tracing.
 */
export function traceparentOf(span: Span): string | undefined {
  const { traceId, spanId, traceFlags } = span.spanContext()
  if (!(traceFlags & TraceFlags.SAMPLED)) return undefined
  return `00-${traceId}-${spanId}-01`
}

/** A link to the span a `traceparent` names; undefined for a malformed one (a job is never refused for it). */
export function linkFromTraceparent(traceparent: string, attributes: Attributes): Link | undefined {
  const match = TRACEPARENT.exec(traceparent)
  if (!match) return undefined
  const context = {
    traceId: match[1] as string,
    spanId: match[2] as string,
    traceFlags: Number.parseInt(match[3] as string, 16),
    isRemote: true,
  }
  return isSpanContextValid(context) ? { context, attributes } : undefined
}
