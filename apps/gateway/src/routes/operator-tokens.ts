import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import { OperatorTokenNameTakenError } from '@iotflow/db'
import { httpError } from '../lib/http-error.js'

const ErrorRef = Type.Ref('ErrorResponse')
const adminOnly = [{ adminBearer: [] }]
const Role = Type.Union([Type.Literal('read'), Type.Literal('admin')], {
  description: 'read: list devices, read telemetry and the dashboard; admin: everything',
})
const OperatorTokenSchema = Type.Object(
  {
    id: Type.Integer(),
    name: Type.String(),
    role: Role,
    secret_prefix: Type.String({ description: 'the first characters of the secret, to recognise it' }),
    created_at: Type.String({ format: 'date-time' }),
  },
  { title: 'OperatorToken' },
)
const Params = Type.Object({ id: Type.Integer({ minimum: 1 }) })

/** Operator tokens besides ADMIN_TOKEN: created with a role, the secret shown once, revoked at once. */
const operatorTokens: FastifyPluginAsyncTypebox = async (fastify) => {
  const repo = fastify.operatorTokensRepository
  const schema = { tags: ['operators'], security: adminOnly }

  fastify.post(
    '/api/v1/operator-tokens',
    {
      onRequest: fastify.requireAdminRole,
      schema: {
        ...schema,
        summary:
          'Create an operator token; its secret is shown once (use it as Authorization: Bearer <secret>)',
        body: Type.Object(
          { name: Type.String({ minLength: 1, maxLength: 128 }), role: Role },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            token: OperatorTokenSchema,
            secret: Type.String({ description: 'shown once; only its hash is stored' }),
          }),
          400: ErrorRef,
          401: ErrorRef,
          403: ErrorRef,
          409: ErrorRef,
        },
      },
    },
    async (request, reply) => {
      const created = await repo.create(request.body).catch((error: unknown) => {
        if (error instanceof OperatorTokenNameTakenError) throw httpError(409, error.message)
        throw error
      })
      return reply.code(201).send(created)
    },
  )

  fastify.get(
    '/api/v1/operator-tokens',
    {
      onRequest: fastify.requireAdminRole,
      schema: {
        ...schema,
        summary: 'The operator tokens in use (never their secrets)',
        response: {
          200: Type.Object({ tokens: Type.Array(OperatorTokenSchema) }),
          401: ErrorRef,
          403: ErrorRef,
        },
      },
    },
    async () => ({ tokens: await repo.list() }),
  )

  fastify.delete(
    '/api/v1/operator-tokens/:id',
    {
      onRequest: fastify.requireAdminRole,
      schema: {
        ...schema,
        summary: 'Revoke an operator token: it stops working at once, on every gateway',
        params: Params,
        response: { 204: Type.Null(), 401: ErrorRef, 403: ErrorRef, 404: ErrorRef },
      },
    },
    async (request, reply) => {
      if (!(await repo.revoke(request.params.id)))
        throw httpError(404, `no operator token ${request.params.id} in use`)
      return reply.code(204).send(null)
    },
  )
}

export default operatorTokens
