import { Type } from '@fastify/type-provider-typebox'
import { IngestUnavailableError } from '@iotflow/ingest'
import type { FastifyRequest } from 'fastify'
import { httpError } from './http-error.js'

const ErrorRef = Type.Ref('ErrorResponse')

/** The refusals every ingest route may answer, all in the ErrorResponse shape. */
export const ingestRefusals = {
  400: ErrorRef,
  401: ErrorRef,
  403: ErrorRef,
  413: ErrorRef,
  415: ErrorRef,
  503: ErrorRef,
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
