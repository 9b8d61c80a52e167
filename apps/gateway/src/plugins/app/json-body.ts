import { parseJsonBody } from '@iotflow/contracts'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { httpError } from '../../lib/http-error.js'

/**
 * JSON bodies, strictly (parseJsonBody, shared with the MQTT bridge): invalid UTF-8, an empty body,
 * malformed JSON and prototype-polluting keys are each a 400 that says which. Fastify's default
 * parser would replace bad bytes silently. Any other content type is a 415 (no parser is registered).
 */
export default fp(
  async (fastify: FastifyInstance) => {
    fastify.removeContentTypeParser(['application/json', 'text/plain'])
    const parseJson = (
      _request: unknown,
      body: Buffer,
      done: (error: Error | null, value?: unknown) => void,
    ) => {
      const parsed = parseJsonBody(body)
      if (parsed.ok) done(null, parsed.value)
      else done(httpError(400, parsed.message, parsed.errors))
    }
    fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, parseJson)
    fastify.addContentTypeParser(/^application\/[\w.+-]+\+json$/, { parseAs: 'buffer' }, parseJson)
  },
  { name: 'json-body' },
)
