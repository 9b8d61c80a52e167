import { tracer, tracingEnabled } from '@iotflow/tracing'
import {
  type Context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyRequest {
    /** The span of an ingest request, as the context its enqueue span is a child of; set only when tracing is on. */
    traceContext?: Context
  }
}

const spans = new WeakMap<FastifyRequest, Span>()

function end(request: FastifyRequest, statusCode: number | undefined) {
  const span = spans.get(request)
  if (!span) return
  spans.delete(request)
  if (statusCode !== undefined) span.setAttribute('http.response.status_code', statusCode)
  if (statusCode === undefined || statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
  span.end()
}

/**
 * A server span for each ingest request (the routes with an `ingestTransport`), continuing the
 * caller's trace when it sends a `traceparent`. Manual spans in two hooks, not auto-instrumentation
 * of every route and module. Registers nothing when tracing is off.
 */
export default fp(
  async (fastify: FastifyInstance) => {
    if (!tracingEnabled()) return
    fastify.decorateRequest('traceContext', undefined)
    fastify.addHook('onRequest', async (request) => {
      if (!request.routeOptions.config.ingestTransport) return
      const route = request.routeOptions.url ?? request.url
      const span = tracer().startSpan(
        `${request.method} ${route}`,
        {
          kind: SpanKind.SERVER,
          attributes: { 'http.request.method': request.method, 'http.route': route, 'url.path': request.url },
        },
        propagation.extract(ROOT_CONTEXT, request.headers),
      )
      spans.set(request, span)
      request.traceContext = trace.setSpan(ROOT_CONTEXT, span)
    })
    fastify.addHook('onResponse', async (request, reply) => end(request, reply.statusCode))
    fastify.addHook('onRequestAbort', async (request) => end(request, undefined))
  },
  { name: 'tracing' },
)
