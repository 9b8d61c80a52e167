import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import {
  AggregatedQuery,
  AggregatedSeries,
  DeviceIdPath,
  LatestValues,
  parseTimeParam,
  parseWindow,
  RawQuery,
  TelemetryPage,
} from '@iotflow/contracts'
import type { FastifyRequest } from 'fastify'
import { assertCanAccessDevice } from '../lib/device-access.js'
import { httpError } from '../lib/http-error.js'

const ErrorRef = Type.Ref('ErrorResponse')
const DEFAULT_SPAN_MS = 3_600_000
const MAX_BUCKETS = 10_000
const refusals = { 400: ErrorRef, 401: ErrorRef, 403: ErrorRef, 404: ErrorRef }

const telemetryQuery: FastifyPluginAsyncTypebox = async (fastify) => {
  const common = {
    tags: ['telemetry'],
    security: [{ deviceApiKey: [] }, { adminBearer: [] }] as Record<string, string[]>[],
    params: DeviceIdPath,
  }

  /** A device reads only itself; admin reads any existing device. */
  async function authorize(request: FastifyRequest, deviceId: number) {
    assertCanAccessDevice(request, deviceId)
    if (request.operator && !(await fastify.devicesRepository.findById(deviceId))) {
      throw httpError(404, `no device ${deviceId}`)
    }
  }

  fastify.get(
    '/api/v1/telemetry/:device_id',
    {
      onRequest: fastify.requireDeviceOrOperator,
      schema: {
        ...common,
        summary: 'Raw points in a time range, newest first, paged by cursor',
        querystring: RawQuery,
        response: { 200: TelemetryPage, ...refusals },
      },
    },
    async (request) => {
      const deviceId = request.params.device_id
      await authorize(request, deviceId)
      const range = timeRange(request.query)
      const before = request.query.cursor === undefined ? undefined : decodeCursor(request.query.cursor)
      const fields = request.query.fields
        ?.split(',')
        .map((f) => f.trim())
        .filter(Boolean)
      const limit = request.query.limit
      // One more than asked tells whether there is a next page.
      const rows = await fastify.telemetryQueries.raw(
        deviceId,
        { ...range, before },
        limit + 1,
        fields?.length ? fields : undefined,
      )
      const page = rows.slice(0, limit)
      const last = page.at(-1)
      return {
        device_id: deviceId,
        points: page.map((row) => ({
          timestamp: row.time.toISOString(),
          type: row.type,
          data: fields?.length ? pick(row.data, fields) : row.data,
        })),
        next_cursor: rows.length > limit && last ? encodeCursor(last.time) : null,
      }
    },
  )

  fastify.get(
    '/api/v1/telemetry/:device_id/latest',
    {
      onRequest: fastify.requireDeviceOrOperator,
      schema: {
        ...common,
        summary: 'The newest value of every field',
        response: { 200: LatestValues, ...refusals },
      },
    },
    async (request) => {
      const deviceId = request.params.device_id
      await authorize(request, deviceId)
      const rows = await fastify.telemetryQueries.latest(deviceId)
      return {
        device_id: deviceId,
        fields: Object.fromEntries(
          rows.map((r) => [r.field, { value: r.value, timestamp: r.time.toISOString() }]),
        ),
      }
    },
  )

  fastify.get(
    '/api/v1/telemetry/:device_id/aggregated',
    {
      onRequest: fastify.requireDeviceOrOperator,
      schema: {
        ...common,
        summary: 'One field aggregated over time windows (mean, min, max, sum, count, first, last)',
        querystring: AggregatedQuery,
        response: { 200: AggregatedSeries, ...refusals },
      },
    },
    async (request) => {
      const deviceId = request.params.device_id
      await authorize(request, deviceId)
      const { field, aggregation, window } = request.query
      const windowMs = parseWindow(window)
      if (!windowMs.ok) throw invalid('querystring.window', windowMs.message)
      const range = timeRange(request.query)
      const buckets = Math.ceil((range.endMs - range.startMs) / windowMs.ms)
      if (buckets > MAX_BUCKETS) {
        throw invalid(
          'querystring.window',
          `makes ${buckets} windows over this range, more than ${MAX_BUCKETS}`,
        )
      }
      const rows = await fastify.telemetryQueries.aggregate(deviceId, {
        field,
        aggregation,
        windowMs: windowMs.ms,
        ...range,
      })
      return {
        device_id: deviceId,
        field,
        aggregation,
        window,
        buckets: rows.map((r) => ({ timestamp: r.bucket.toISOString(), value: r.value })),
      }
    },
  )
}

export default telemetryQuery

function timeRange(query: { start?: string; end?: string }) {
  const now = Date.now()
  const end = query.end === undefined ? { ok: true as const, ms: now } : parseTimeParam(query.end, now)
  if (!end.ok) throw invalid('querystring.end', end.message)
  const start =
    query.start === undefined
      ? { ok: true as const, ms: end.ms - DEFAULT_SPAN_MS }
      : parseTimeParam(query.start, now)
  if (!start.ok) throw invalid('querystring.start', start.message)
  if (start.ms >= end.ms) throw invalid('querystring.start', 'must be before end')
  return { startMs: start.ms, endMs: end.ms }
}

const invalid = (path: string, message: string) =>
  httpError(400, `${path.split('.')[1]} ${message}`, [{ path, message }])

const encodeCursor = (time: Date) => Buffer.from(time.toISOString()).toString('base64url')

function decodeCursor(cursor: string): Date {
  const time = new Date(Buffer.from(cursor, 'base64url').toString('utf8'))
  if (Number.isNaN(time.getTime())) throw invalid('querystring.cursor', 'is not a cursor this API gave out')
  return time
}

function pick(data: Record<string, unknown>, fields: string[]) {
  return Object.fromEntries(fields.filter((f) => f in data).map((f) => [f, data[f]]))
}
