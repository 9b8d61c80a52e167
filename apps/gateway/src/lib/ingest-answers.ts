import { STATUS_CODES } from 'node:http'
import { Type } from '@fastify/type-provider-typebox'
import type { ErrorDetail, ErrorResponse } from '@iotflow/contracts'
import { IngestUnavailableError, type RateLimited } from '@iotflow/ingest'
import type { RefusalReason } from '@iotflow/metrics'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { type HttpError, httpError } from './http-error.js'

const ErrorRef = Type.Ref('ErrorResponse')

/** The refusals every ingest route may answer, all in the ErrorResponse shape. */
export const ingestRefusals = {
  400: ErrorRef,
  401: ErrorRef,
  403: ErrorRef,
  413: ErrorRef,
  415: ErrorRef,
  429: ErrorRef,
  503: ErrorRef,
}

/** An ingest refusal as the error the handler throws: a 429 with Retry-After, others as they are. */
export function refusalError(
  outcome: RateLimited | { status: 400 | 403 | 413; message: string; errors: ErrorDetail[] },
): HttpError {
  if (outcome.status === 429) {
    return httpError(429, outcome.message, undefined, { 'retry-after': String(outcome.retryAfterSeconds) })
  }
  return httpError(outcome.status, outcome.message, outcome.errors)
}

const RETRY_AFTER_SECONDS = '5'

/** A dependency of ingest is down: 503 with Retry-After (the sender keeps its data); others rethrown. */
export function asUnavailable(request: FastifyRequest, error: unknown): never {
  if (!(error instanceof IngestUnavailableError)) throw error
  request.log.warn(
    { err: (error.cause as Error)?.message, dependency: error.dependency },
    'ingest unavailable',
  )
  throw httpError(503, `${error.message}; nothing was queued, retry later`, undefined, {
    'retry-after': RETRY_AFTER_SECONDS,
  })
}

/**
 * Refuses an ingest request from an onRequest hook, before its body is read: 503 with a Retry-After
 * of 1 to `maxRetryAfterSeconds` s at random, so that devices refused at the same moment come back
 * spread out. Answered rather than thrown: the error handler would log every refusal as a failure.
 */
export function refuseBeforeBody(
  request: FastifyRequest,
  reply: FastifyReply,
  refusal: { reason: RefusalReason; message: string; maxRetryAfterSeconds: number },
) {
  request.ingestRefusal = refusal.reason
  const body: ErrorResponse = {
    statusCode: 503,
    error: STATUS_CODES[503] as string,
    message: refusal.message,
  }
  const retryAfter = String(1 + Math.floor(Math.random() * refusal.maxRetryAfterSeconds))
  return reply.code(503).header('retry-after', retryAfter).send(body)
}
