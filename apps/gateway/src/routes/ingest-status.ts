import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import { httpError } from '../lib/http-error.js'

const ErrorRef = Type.Ref('ErrorResponse')
const State = Type.Union([Type.Literal('queued'), Type.Literal('stored'), Type.Literal('failed')])
const StoreStatus = Type.Object({
  status: State,
  attempts: Type.Integer({ description: 'attempts used (an unavailable store uses none)' }),
  error: Type.Optional(Type.String({ description: 'the last error, while retrying or once failed' })),
})
const BatchStatus = Type.Object(
  {
    batch_id: Type.String(),
    points: Type.Integer({ description: 'points of the batch that are the requester’s' }),
    received_at: Type.Integer({ description: 'epoch ms' }),
    devices: Type.Array(Type.Object({ device_id: Type.Integer(), points: Type.Integer() }), {
      description:
        'the devices whose points the batch carries (a device sees only itself: several requests ' +
        'queued together share one batch)',
    }),
    status: State,
    stores: Type.Object({ postgres: StoreStatus, influxdb: StoreStatus }),
  },
  { title: 'BatchStatus' },
)

const ingestStatus: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    '/api/v1/ingest/:batch_id',
    {
      onRequest: fastify.requireDeviceOrOperator,
      schema: {
        tags: ['telemetry'],
        summary: 'Where a batch is: queued, stored (in both stores) or failed, per store',
        description:
          'A stored batch is kept a day (at most the newest 100,000 stored batches); a failed one until it is replayed.',
        security: [{ deviceApiKey: [] }, { adminBearer: [] }] as Record<string, string[]>[],
        params: Type.Object({ batch_id: Type.String({ format: 'uuid' }) }),
        response: { 200: BatchStatus, 400: ErrorRef, 401: ErrorRef, 403: ErrorRef, 404: ErrorRef },
      },
    },
    async (request) => {
      const status = await fastify.batchStatus.read(request.params.batch_id)
      if (!status)
        throw httpError(
          404,
          `no batch ${request.params.batch_id} (unknown, or stored long ago: the newest 100,000 stored batches are kept, a day at most)`,
        )
      if (request.operator) return status
      const own = status.devices.filter((d) => d.device_id === request.device?.id)
      if (own.length === 0) throw httpError(403, 'a device may only access its own data')
      return { ...status, devices: own, points: own.reduce((sum, d) => sum + d.points, 0) }
    },
  )
}

export default ingestStatus
