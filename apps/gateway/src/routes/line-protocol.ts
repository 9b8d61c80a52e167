import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import type { ErrorResponse, Precision, TelemetryLimits } from '@iotflow/contracts'
import { GATEWAY_KEY_PREFIX } from '@iotflow/db'
import { createLineProtocolIngest, type LineProtocolSender } from '@iotflow/ingest'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { createConcurrencyLimit } from '../lib/concurrency-limit.js'
import { edgeGatewayByKey } from '../lib/edge-gateway-key.js'
import { httpError } from '../lib/http-error.js'
import { asUnavailable, refusalError, refuseBeforeBody } from '../lib/ingest-answers.js'
import { lineProtocolText } from '../lib/line-protocol-body.js'

export interface LineProtocolRoutesOptions {
  limits: TelemetryLimits
  /** LINE_PROTOCOL_DEVICE_TAG */
  deviceTag: string
  /** LINE_PROTOCOL_MAX_IN_FLIGHT */
  maxInFlight: number
}

/** Requests that may wait for a slot, per slot; past that they are answered 503 at once. */
const WAITING_PER_SLOT = 16
const BUSY = {
  reason: 'overloaded',
  message: 'the gateway is busy with other line protocol bodies; nothing was queued, retry later',
  maxRetryAfterSeconds: 2,
} as const

/** What InfluxDB answers on /ping; clients read it to tell 1.x from 2.x. */
export const INFLUXDB_COMPATIBLE_VERSION = '1.8.10'

// InfluxDB's error codes, which its clients print and act on (`code` beside our ErrorResponse).
const INFLUX_CODES: Record<number, string> = {
  400: 'invalid',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not found',
  413: 'request too large',
  415: 'unsupported media type',
  422: 'unprocessable entity',
  429: 'too many requests',
  503: 'unavailable',
}

const LineProtocolError = Type.Object(
  {
    code: Type.String({ description: "InfluxDB's error code, e.g. invalid, unprocessable entity" }),
    message: Type.String(),
    statusCode: Type.Integer(),
    error: Type.String({ description: 'the HTTP reason phrase' }),
    errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
  },
  { title: 'LineProtocolError' },
)
const answers = {
  204: Type.Null({ description: 'every line is durably queued for both stores' }),
  400: LineProtocolError,
  401: LineProtocolError,
  403: LineProtocolError,
  413: LineProtocolError,
  415: LineProtocolError,
  422: LineProtocolError,
  429: LineProtocolError,
  503: LineProtocolError,
}
const PRECISION: Record<string, Precision> = { ns: 'ns', n: 'ns', us: 'us', u: 'us', ms: 'ms', s: 's' }
const precisionParameter = Type.Optional(
  Type.String({ description: 'unit of the timestamps: ns (default), us, ms or s', default: 'ns' }),
)
const body = Type.String({
  description: 'InfluxDB line protocol, one point per line; `Content-Encoding: gzip` accepted',
  examples: ['weather,site=north temperature=21.5,humidity=50i,door="open" 1764324000000000000'],
})

/**
 * InfluxDB's write API, so that Telegraf, Vector and every InfluxDB client library write to IoTFlow
 * by changing one URL: v1 `POST /write`, v2 `POST /api/v2/write`, and `/ping`. Lines go through the
 * shared ingest path (createIngestService) like JSON telemetry; the mapping is in
 * docs/telemetry-contract.md. Encapsulated: its body parser and InfluxDB-style error bodies apply
 * to these routes only.
 */
const lineProtocol: FastifyPluginAsyncTypebox<LineProtocolRoutesOptions> = async (fastify, options) => {
  const ingestLineProtocol = createLineProtocolIngest({
    ingestService: fastify.ingestService,
    limits: options.limits,
    deviceTag: options.deviceTag,
  })
  const bodyLimit = fastify.initialConfig.bodyLimit as number
  // Bodies are parsed a few at a time (more would not be faster on the CPU), so the memory their
  // points hold until queued is bounded by the slots, not by the number of clients.
  const slots = createConcurrencyLimit(options.maxInFlight, options.maxInFlight * WAITING_PER_SLOT)

  // Any content type (clients send text/plain, application/octet-stream or none): the body is bytes.
  fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, raw, done) => done(null, raw))
  // The influx 1.x CLI sends an empty Content-Type, which Fastify would refuse as invalid (415).
  fastify.addHook('onRequest', async (request) => {
    if (request.headers['content-type']?.trim() === '')
      request.headers['content-type'] = 'application/octet-stream'
  })
  fastify.addHook('preSerialization', async (_request, reply, payload) => {
    if (reply.statusCode < 400 || payload === null || typeof payload !== 'object') return payload
    return { code: INFLUX_CODES[reply.statusCode] ?? 'internal error', ...(payload as ErrorResponse) }
  })

  async function write(request: FastifyRequest, reply: FastifyReply, sender: LineProtocolSender) {
    const query = request.query as { precision?: string }
    const precision = PRECISION[query.precision ?? 'ns']
    if (!precision) throw httpError(400, `precision ${query.precision} is not one of ns, us, ms, s`)
    const release = await slots.acquire()
    // Answered rather than thrown, as load shedding answers: the error handler logs a thrown 503.
    if (!release) return refuseBeforeBody(request, reply, BUSY)
    try {
      const text = await lineProtocolText(
        request.body as Buffer,
        request.headers['content-encoding'],
        bodyLimit,
      )
      const outcome = await ingestLineProtocol(sender, text, precision, undefined, request.traceContext)
      // Counted in metrics: the points queued, or for a partial write the lines dropped.
      if (outcome.status === 204) request.ingestedPoints = outcome.accepted
      else if (outcome.status === 422) request.ingestedPoints = outcome.dropped
      if (outcome.status === 204) return reply.code(204).send()
      if (outcome.status === 422) throw httpError(422, outcome.message, outcome.errors)
      throw refusalError(outcome)
    } catch (error) {
      asUnavailable(request, error)
    } finally {
      release()
    }
  }

  /** The device or edge gateway a key belongs to. */
  async function senderOf(request: FastifyRequest, reply: FastifyReply, key: string | undefined) {
    if (!key) {
      throw httpError(
        401,
        'a device or edge gateway key is required: Authorization: Token <key>, Basic auth or ?p=<key>',
      )
    }
    if (key.startsWith(GATEWAY_KEY_PREFIX)) return { gateway: await edgeGatewayByKey(fastify, key) }
    await fastify.authenticateDevice(request, reply, key)
    return { device: request.device as NonNullable<FastifyRequest['device']> }
  }

  const routeConfig = { ingestTransport: 'http' as const }
  // The schemas document the contract; the body is bytes (gzip or not) and the query is read by hand.
  const validatorCompiler = () => (value: unknown) => ({ value })
  const ignored = (what: string) =>
    Type.Optional(Type.String({ description: `${what}; accepted and ignored` }))

  fastify.post(
    '/write',
    {
      config: routeConfig,
      validatorCompiler,
      schema: {
        tags: ['line protocol'],
        summary: 'Write line protocol (InfluxDB 1.x API)',
        description:
          'The key is taken from `Authorization: Token <key>`, Basic auth (the password) or `?p=`. ' +
          '204 once every line is durably queued; 400 names the first bad line and queues nothing; 422 ' +
          '"partial write": lines whose field types conflict were dropped, the others queued.',
        security: [{ influxToken: [] }, { influxBasic: [] }, { influxQueryPassword: [] }],
        querystring: Type.Object({
          db: ignored('database'),
          rp: ignored('retention policy'),
          precision: precisionParameter,
          u: ignored('user name'),
          p: Type.Optional(Type.String({ description: 'the device or edge gateway key' })),
        }),
        body,
        response: answers,
      },
    },
    async (request, reply) => {
      const key = keyOf(request.headers.authorization) ?? (request.query as { p?: string }).p
      return write(request, reply, await senderOf(request, reply, key))
    },
  )

  fastify.post(
    '/api/v2/write',
    {
      config: routeConfig,
      validatorCompiler,
      schema: {
        tags: ['line protocol'],
        summary: 'Write line protocol (InfluxDB 2.x API)',
        description:
          '`Authorization: Token <key>` (a device key, or an edge gateway key with a `device_id` tag on ' +
          'every line). Answers as /write does.',
        security: [{ influxToken: [] }],
        querystring: Type.Object({
          org: ignored('organisation'),
          orgID: ignored('organisation id'),
          bucket: ignored('bucket'),
          precision: precisionParameter,
        }),
        body,
        response: answers,
      },
    },
    async (request, reply) =>
      write(request, reply, await senderOf(request, reply, keyOf(request.headers.authorization))),
  )

  fastify.get(
    '/ping',
    {
      schema: {
        tags: ['line protocol'],
        summary: 'InfluxDB-compatible liveness probe',
        description: `204 with \`X-Influxdb-Version: ${INFLUXDB_COMPATIBLE_VERSION}\`, as InfluxDB answers.`,
        response: { 204: Type.Null({ description: 'the gateway is up' }) },
      },
    },
    async (_request, reply) =>
      reply
        .code(204)
        .header('x-influxdb-version', INFLUXDB_COMPATIBLE_VERSION)
        .header('x-influxdb-build', 'OSS')
        .send(null),
  )
}

/** The key in `Token <key>` or in Basic auth's password; undefined for any other scheme. */
function keyOf(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined
  const space = authorization.indexOf(' ')
  const scheme = authorization.slice(0, space).toLowerCase()
  const credentials = authorization.slice(space + 1).trim()
  if (scheme === 'token') return credentials
  if (scheme === 'basic') {
    const decoded = Buffer.from(credentials, 'base64').toString('utf8')
    return decoded.slice(decoded.indexOf(':') + 1)
  }
  return undefined
}

export default lineProtocol
