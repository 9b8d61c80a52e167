import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { IngestAccepted, TelemetryBody } from '@iotflow/contracts'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { httpError } from '../lib/http-error.js'
import { asUnavailable, ingestRefusals, refusalError } from '../lib/ingest-answers.js'

const telemetry: FastifyPluginAsyncTypebox = async (fastify) => {
  async function ingest(request: FastifyRequest, reply: FastifyReply) {
    const device = request.device
    if (!device) throw httpError(401, 'a device API key is required in the X-API-Key header')
    try {
      const outcome = await fastify.ingestService.ingest(
        device,
        request.body,
        undefined,
        request.traceContext,
      )
      if (outcome.status !== 202) throw refusalError(outcome)
      return reply.code(202).send({ batch_id: outcome.batchId, accepted: outcome.accepted })
    } catch (error) {
      asUnavailable(request, error)
    }
  }

  const schema = {
    tags: ['telemetry'],
    security: [{ deviceApiKey: [] }],
    description:
      'One point, `{"points": [...]}`, or a bare array of points. 202 only once the batch is durably ' +
      'queued for both stores. A batch is all or nothing: one bad point refuses the request, and the ' +
      "400 lists every bad point with its path. Over the device's rate limit (points per second, " +
      'DEVICE_RATE_*): 429 with Retry-After. Limits: docs/telemetry-contract.md.',
    body: TelemetryBody,
    response: { 202: IngestAccepted, ...ingestRefusals },
  }
  const routeOptions = {
    onRequest: fastify.requireDevice,
    config: { ingestTransport: 'http' as const },
    // The body schema documents the contract; the shared ingest path validates it, so that HTTP
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
