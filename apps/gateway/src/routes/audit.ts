import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import { parseTimeParam } from '@iotflow/contracts'
import { httpError } from '../lib/http-error.js'

const ErrorRef = Type.Ref('ErrorResponse')
const AuditEntrySchema = Type.Object(
  {
    id: Type.Integer(),
    at: Type.String({ format: 'date-time' }),
    token: Type.Object({
      id: Type.Union([Type.Integer(), Type.Null()], { description: 'null: ADMIN_TOKEN' }),
      name: Type.String(),
      role: Type.Union([Type.Literal('read'), Type.Literal('admin')]),
    }),
    method: Type.String(),
    route: Type.String(),
    params: Type.Record(Type.String(), Type.Unknown()),
    status_code: Type.Integer({ description: 'the answer: a refused change is logged too' }),
    ip: Type.String(),
  },
  { title: 'AuditEntry' },
)

/** GET /api/v1/audit: who changed what, when, from which address. */
const audit: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    '/api/v1/audit',
    {
      onRequest: fastify.requireAdminRole,
      schema: {
        tags: ['operators'],
        summary: 'The audit log of changes made with operator credentials, newest first',
        security: [{ adminBearer: [] }],
        querystring: Type.Object(
          {
            since: Type.Optional(Type.String({ description: 'ISO-8601 or relative (-1h)' })),
            limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ entries: Type.Array(AuditEntrySchema) }),
          400: ErrorRef,
          401: ErrorRef,
          403: ErrorRef,
        },
      },
    },
    async (request) => {
      const { since, limit } = request.query
      const parsed = since === undefined ? undefined : parseTimeParam(since, Date.now())
      if (parsed && !parsed.ok) throw httpError(400, `querystring.since ${parsed.message}`)
      const sinceDate = parsed?.ok ? new Date(parsed.ms) : undefined
      return { entries: await fastify.auditRepository.list({ since: sinceDate, limit }) }
    },
  )
}

export default audit
