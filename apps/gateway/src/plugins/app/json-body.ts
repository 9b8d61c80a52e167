import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import secureJson from 'secure-json-parse'
import { httpError } from '../../lib/http-error.js'

const BODY = '(body)'
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * JSON bodies, strictly: invalid UTF-8, an empty body, malformed JSON and prototype-polluting keys
 * (`__proto__`, `constructor.prototype`) are each a 400 that says which. Fastify's default parser
 * would replace bad bytes silently. Any other content type is a 415 (no parser is registered).
 */
export default fp(
  async (fastify: FastifyInstance) => {
    fastify.removeContentTypeParser(['application/json', 'text/plain'])
    const parseJson = (
      _request: unknown,
      body: Buffer,
      done: (error: Error | null, value?: unknown) => void,
    ) => {
      if (body.length === 0) return done(badBody('is empty; send a JSON object or array'))
      let text: string
      try {
        text = utf8.decode(body)
      } catch {
        return done(badBody('is not valid UTF-8'))
      }
      let value: unknown
      try {
        value = secureJson.parse(text, null, { protoAction: 'error', constructorAction: 'error' })
      } catch (error) {
        const message = (error as Error).message
        if (/forbidden prototype property/.test(message)) {
          return done(badBody('contains a forbidden "__proto__" or "constructor.prototype" key'))
        }
        if (error instanceof RangeError) return done(badBody('is nested too deeply'))
        return done(badBody(`is not valid JSON: ${message}`))
      }
      done(null, value)
    }
    fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, parseJson)
    fastify.addContentTypeParser(/^application\/[\w.+-]+\+json$/, { parseAs: 'buffer' }, parseJson)
  },
  { name: 'json-body' },
)

function badBody(message: string) {
  return httpError(400, `the body ${message}`, [{ path: BODY, message }])
}
