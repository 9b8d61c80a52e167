import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import { assertCanAccessDevice } from '../lib/device-access.js'
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
    device_id: Type.Integer(),
    points: Type.Integer(),
    received_at: Type.Integer({ description: 'epoch ms' }),
    status: State,
    stores: Type.Object({ postgres: StoreStatus, influxdb: StoreStatus }),
  },
  { title: 'BatchStatus' },
)

const ingestStatus: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    '/api/v1/ingest/:batch_id',
    {
      onRequest: fastify.requireDeviceOrAdmin,
      schema: {
        tags: ['telemetry'],
        summary: 'Where a batch is: queued, stored (in both stores) or failed, per store',
        description: 'Batches are kept a day after they are stored; a failed one until it is replayed.',
        security: [{ deviceApiKey: [] }, { adminBearer: [] }] as Record<string, string[]>[],
        params: Type.Object({ batch_id: Type.String({ format: 'uuid' }) }),
        response: { 200: BatchStatus, 400: ErrorRef, 401: ErrorRef, 403: ErrorRef, 404: ErrorRef },
      },
    },
    async (request) => {
      const status = await fastify.batchStatus.read(request.params.batch_id)
      if (!status)
        throw httpError(404, `no batch ${request.params.batch_id} (unknown, or stored more than a day ago)`)
      assertCanAccessDevice(request, status.device_id)
      return status
    },
  )
}

export default ingestStatus
