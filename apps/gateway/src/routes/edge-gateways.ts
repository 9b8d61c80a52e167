import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import { IngestAccepted } from '@iotflow/contracts'
import { type EdgeGateway, EdgeGatewayInputError } from '@iotflow/db'
import { createBulkIngest } from '@iotflow/ingest'
import type { FastifyRequest } from 'fastify'
import { edgeGatewayByKey } from '../lib/edge-gateway-key.js'
import { httpError } from '../lib/http-error.js'
import { asUnavailable, ingestRefusals, refusalError } from '../lib/ingest-answers.js'

const ErrorRef = Type.Ref('ErrorResponse')
const adminOnly = [{ adminBearer: [] }]

const EdgeGatewaySchema = Type.Object(
  {
    id: Type.Integer(),
    name: Type.String(),
    status: Type.Union([Type.Literal('active'), Type.Literal('inactive')]),
    device_ids: Type.Array(Type.Integer(), { description: 'the devices it may send for' }),
    api_key_prefix: Type.String(),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { title: 'EdgeGateway' },
)
const DeviceIds = Type.Array(Type.Integer({ minimum: 1 }), { maxItems: 100_000, uniqueItems: true })
const Created = Type.Object({
  gateway: EdgeGatewaySchema,
  api_key: Type.String({ description: 'shown once' }),
})
const Envelope = Type.Object({ gateway: EdgeGatewaySchema })
const Params = Type.Object({ id: Type.Integer({ minimum: 1 }) })
const BulkAccepted = Type.Object(
  {
    accepted: Type.Integer(),
    batches: Type.Array(Type.Intersect([Type.Object({ device_id: Type.Integer() }), IngestAccepted])),
  },
  { title: 'BulkAccepted' },
)

export interface EdgeGatewayRoutesOptions {
  limits: Parameters<typeof createBulkIngest>[0]['limits']
}

/** Site gateways: admin-issued credentials scoped to devices, and the bulk ingest route they use. */
const edgeGateways: FastifyPluginAsyncTypebox<EdgeGatewayRoutesOptions> = async (fastify, options) => {
  const repo = fastify.edgeGatewaysRepository
  const ingestBulk = createBulkIngest({
    fieldTypes: fastify.fieldTypes,
    enqueuer: fastify.batchEnqueuer,
    limits: options.limits,
    rateLimiter: fastify.deviceRateLimiter,
  })
  const found = (gateway: EdgeGateway | undefined, id: number) => {
    if (!gateway) throw httpError(404, `no edge gateway ${id}`)
    return { gateway }
  }
  const asHttp = (error: unknown): never => {
    if (error instanceof EdgeGatewayInputError) throw httpError(error.status, error.message)
    throw error
  }

  fastify.post(
    '/api/v1/gateways',
    {
      onRequest: fastify.requireOperator,
      schema: {
        tags: ['gateways'],
        summary: 'Issue an edge gateway credential for the devices it may send for; the key is shown once',
        security: adminOnly,
        body: Type.Object(
          { name: Type.String({ minLength: 1, maxLength: 128 }), device_ids: DeviceIds },
          { additionalProperties: false },
        ),
        response: { 201: Created, 400: ErrorRef, 401: ErrorRef, 403: ErrorRef, 409: ErrorRef },
      },
    },
    async (request, reply) => {
      const { gateway, apiKey } = await repo.create(request.body).catch(asHttp)
      return reply.code(201).send({ gateway, api_key: apiKey })
    },
  )

  fastify.get(
    '/api/v1/gateways/:id',
    {
      onRequest: fastify.requireOperator,
      schema: {
        tags: ['gateways'],
        security: adminOnly,
        params: Params,
        response: { 200: Envelope, 401: ErrorRef, 404: ErrorRef },
      },
    },
    async (request) => found(await repo.findById(request.params.id), request.params.id),
  )

  fastify.patch(
    '/api/v1/gateways/:id',
    {
      onRequest: fastify.requireOperator,
      schema: {
        tags: ['gateways'],
        summary: 'Change its devices, name or status',
        security: adminOnly,
        params: Params,
        body: Type.Partial(
          Type.Object({
            name: Type.String({ minLength: 1, maxLength: 128 }),
            status: Type.Union([Type.Literal('active'), Type.Literal('inactive')]),
            device_ids: DeviceIds,
          }),
          { additionalProperties: false, minProperties: 1 },
        ),
        response: {
          200: Envelope,
          400: ErrorRef,
          401: ErrorRef,
          403: ErrorRef,
          404: ErrorRef,
          409: ErrorRef,
        },
      },
    },
    async (request) =>
      found(await repo.update(request.params.id, request.body).catch(asHttp), request.params.id),
  )

  fastify.delete(
    '/api/v1/gateways/:id',
    {
      onRequest: fastify.requireOperator,
      schema: {
        tags: ['gateways'],
        summary: 'Deactivate it and revoke its key',
        security: adminOnly,
        params: Params,
        response: { 200: Envelope, 401: ErrorRef, 403: ErrorRef, 404: ErrorRef },
      },
    },
    async (request) => found(await repo.deactivate(request.params.id), request.params.id),
  )

  /** The edge gateway's own key, in X-API-Key. */
  async function requireEdgeGateway(request: FastifyRequest) {
    const key = request.headers['x-api-key']
    if (typeof key !== 'string' || key.length === 0)
      throw httpError(401, 'an edge gateway key is required in the X-API-Key header')
    request.edgeGateway = await edgeGatewayByKey(fastify, key)
  }

  fastify.post(
    '/api/v1/telemetry/bulk',
    {
      onRequest: requireEdgeGateway,
      config: { ingestTransport: 'http' as const },
      validatorCompiler: () => (value: unknown) => ({ value }),
      schema: {
        tags: ['telemetry'],
        summary: 'Points of many devices from one edge gateway, each with its device_id',
        description:
          '`{"points": [{"device_id": 7, "timestamp": ..., "data": {...}}, ...]}` or a bare array. All or ' +
          'nothing: a point for a device the gateway may not send for refuses the request (403), and so ' +
          'does one device over its own rate limit (429 with Retry-After).',
        security: [{ deviceApiKey: [] }],
        body: Type.Union([
          Type.Object({
            points: Type.Array(Type.Object({ device_id: Type.Integer() }, { additionalProperties: true })),
          }),
          Type.Array(Type.Object({ device_id: Type.Integer() }, { additionalProperties: true })),
        ]),
        response: { 202: BulkAccepted, ...ingestRefusals },
      },
    },
    async (request, reply) => {
      const sender = request.edgeGateway
      if (!sender) throw httpError(401, 'an edge gateway key is required')
      try {
        const outcome = await ingestBulk(sender, request.body, undefined, request.traceContext)
        if (outcome.status !== 202) throw refusalError(outcome)
        // The devices behind the edge gateway are alive as much as one that sends itself.
        for (const batch of outcome.batches) fastify.lastSeen.touch(batch.device_id)
        return reply.code(202).send({
          accepted: outcome.accepted,
          batches: outcome.batches.map((b) => ({
            device_id: b.device_id,
            batch_id: b.batch_id,
            accepted: b.accepted,
          })),
        })
      } catch (error) {
        asUnavailable(request, error)
      }
    },
  )
}

export default edgeGateways
