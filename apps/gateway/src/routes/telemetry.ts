import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import { IngestAccepted, parseTelemetryBody, TelemetryBody } from '@iotflow/contracts'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { httpError } from '../lib/http-error.js'

const ErrorRef = Type.Ref('ErrorResponse')
const RETRY_AFTER_SECONDS = '5'

const telemetry: FastifyPluginAsyncTypebox = async (fastify) => {
  async function ingest(request: FastifyRequest, reply: FastifyReply) {
    const device = request.device
    if (!device) throw httpError(401, 'a device API key is required in the X-API-Key header')
    const receivedAt = Date.now()
    const parsed = parseTelemetryBody(request.body, receivedAt)
    if (!parsed.ok) {
      throw httpError(
        400,
        `the telemetry is invalid (${parsed.errors.length} problem(s)); nothing was queued`,
        parsed.errors,
      )
    }
    let batchId: string
    try {
      ;({ batchId } = await fastify.batchEnqueuer.enqueue({
        device_id: device.id,
        device_type: device.device_type,
        received_at: receivedAt,
        points: parsed.points,
      }))
    } catch (error) {
      request.log.warn({ err: (error as Error).message }, 'enqueue failed')
      throw httpError(503, 'the queue is unavailable; nothing was queued, retry later', undefined, {
        'retry-after': RETRY_AFTER_SECONDS,
      })
    }
    return reply.code(202).send({ batch_id: batchId, accepted: parsed.points.length })
  }

  const schema = {
    tags: ['telemetry'],
    security: [{ deviceApiKey: [] }],
    description:
      'One point, `{"points": [...]}`, or a bare array of points. 202 only once the batch is durably ' +
      'queued for both stores; a batch is all or nothing.',
    body: TelemetryBody,
    response: {
      202: IngestAccepted,
      400: ErrorRef,
      401: ErrorRef,
      403: ErrorRef,
      413: ErrorRef,
      415: ErrorRef,
      503: ErrorRef,
    },
  }
  const routeOptions = {
    onRequest: fastify.requireDevice,
    config: { ingestTransport: 'http' as const },
    // The body schema documents the contract; the contract's own parser validates it, so that HTTP
    // and MQTT give the same verdict with the same error paths.
    validatorCompiler: () => (value: unknown) => ({ value }),
    handler: ingest,
  }
  fastify.post('/api/v1/telemetry', { schema: { ...schema, summary: 'Send telemetry' }, ...routeOptions })
  fastify.post('/api/v1/devices/telemetry', {
    schema: { ...schema, summary: 'Send telemetry (predecessor alias of POST /api/v1/telemetry)' },
    ...routeOptions,
  })
}

export default telemetry
