import { STATUS_CODES } from 'node:http'
import type { ErrorDetail, ErrorResponse } from '@iotflow/contracts'
import type { FastifyError, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { HttpError } from '../../lib/http-error.js'

/**
 * The one place errors become answers, all in the ErrorResponse shape. 4xx say what is wrong and
 * where; 5xx are logged in full and masked, so internals never leak to a device.
 */
export default fp(
  async (fastify: FastifyInstance) => {
    fastify.setErrorHandler((error: FastifyError | HttpError, request, reply) => {
      const statusCode = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500
      if (statusCode >= 500) {
        request.log.error({ err: error }, 'request failed')
      }
      const body: ErrorResponse = {
        statusCode,
        error: STATUS_CODES[statusCode] ?? 'Error',
        message: statusCode >= 500 && !(error instanceof HttpError) ? 'Internal server error' : error.message,
      }
      const details = detailsOf(error)
      if (details) body.errors = details
      if (error instanceof HttpError) reply.headers(error.headers)
      reply.code(statusCode).send(body)
    })

    fastify.setNotFoundHandler((request, reply) => {
      reply.code(404).send({
        statusCode: 404,
        error: 'Not Found',
        message: `no route ${request.method} ${request.url.split('?')[0]}`,
      } satisfies ErrorResponse)
    })
  },
  { name: 'error-handler' },
)

function detailsOf(error: FastifyError | HttpError): ErrorDetail[] | undefined {
  if (error instanceof HttpError) return error.errors
  if (error.validation) {
    const where = error.validationContext ?? 'body'
    return error.validation.map((issue) => {
      const extra = (issue.params as { additionalProperty?: string }).additionalProperty
      const pointer = extra ? `${issue.instancePath}/${extra}` : issue.instancePath
      return {
        path: `${where}${pointer.replace(/\//g, '.')}`,
        message: extra ? 'is not an allowed property' : (issue.message ?? 'is invalid'),
      }
    })
  }
  return undefined
}
