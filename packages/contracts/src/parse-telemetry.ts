import { Type } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { ErrorDetail } from './errors.js'
import { flattenData } from './flatten-data.js'
import { defaultTelemetryLimits, MAX_TYPE_LENGTH, type TelemetryLimits } from './limits.js'
import { storableStringProblem, tagValueProblem } from './names.js'
import { BODY, indexPath, keyPath } from './paths.js'
import type { StoredPoint } from './telemetry.js'
import { toEpochMillis } from './timestamps.js'

export type ParseResult =
  /** `base`: the path of the points array (`points`, or '' for a bare array); null for a single point. */
  | { ok: true; points: StoredPoint[]; base: string | null }
  | { ok: false; status: 400 | 413; errors: ErrorDetail[] }

/** The envelope of a point; `data` and `metadata` are walked by hand, iteratively. */
const PointEnvelope = Type.Object(
  {
    timestamp: Type.Optional(Type.Union([Type.String(), Type.Number()])),
    data: Type.Record(Type.String(), Type.Unknown()),
    type: Type.Optional(Type.String()),
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
)
const envelope = TypeCompiler.Compile(PointEnvelope)
const MAX_REPORTED_ERRORS = 100
const MAX_METADATA_DEPTH = 8

/**
 * Validates any of the three body shapes and normalises it into stored points. All or nothing:
 * one bad point refuses the whole request, and every bad point is reported (up to a cap).
 * The same function serves HTTP and MQTT, so both give the same verdict with the same paths.
 */
export function parseTelemetryBody(
  body: unknown,
  receivedAtMs: number,
  limits: TelemetryLimits = defaultTelemetryLimits,
): ParseResult {
  const shape = pointsOf(body)
  if ('error' in shape) return { ok: false, status: 400, errors: [shape.error] }
  const { points, base } = shape
  const where = base === null ? BODY : base || BODY
  if (points.length === 0)
    return { ok: false, status: 400, errors: [{ path: where, message: 'holds no points' }] }
  if (points.length > limits.maxPoints) {
    return {
      ok: false,
      status: 413,
      errors: [{ path: where, message: `holds ${points.length} points, more than ${limits.maxPoints}` }],
    }
  }

  const errors: ErrorDetail[] = []
  const stored: StoredPoint[] = []
  for (let index = 0; index < points.length && errors.length < MAX_REPORTED_ERRORS; index++) {
    const path = base === null ? '' : indexPath(base, index)
    const point = parsePoint(points[index], path, receivedAtMs, limits, errors)
    if (point) stored.push(point)
  }
  return errors.length > 0 ? { ok: false, status: 400, errors } : { ok: true, points: stored, base }
}

/** `base` is the path of the points array (`points`, or '' for a bare array); null for one point. */
type Shape = { points: unknown[]; base: string | null } | { error: ErrorDetail }

function pointsOf(body: unknown): Shape {
  if (Array.isArray(body)) return { points: body, base: '' }
  if (body === null || typeof body !== 'object') {
    return { error: { path: BODY, message: 'must be a JSON object or an array of points' } }
  }
  if (!('points' in body)) return { points: [body], base: null }
  const { points, ...rest } = body as { points: unknown }
  const extra = Object.keys(rest)[0]
  if (extra !== undefined)
    return { error: { path: keyPath('', extra), message: 'is not allowed beside points' } }
  if (!Array.isArray(points)) return { error: { path: 'points', message: 'must be an array of points' } }
  return { points, base: 'points' }
}

function parsePoint(
  point: unknown,
  path: string,
  receivedAtMs: number,
  limits: TelemetryLimits,
  errors: ErrorDetail[],
): StoredPoint | undefined {
  if (point === null || typeof point !== 'object' || Array.isArray(point)) {
    errors.push({ path: path || BODY, message: 'must be an object with a data field' })
    return undefined
  }
  if (!envelope.Check(point)) {
    errors.push(...envelopeErrors(point, path))
    return undefined
  }
  const before = errors.length
  const time = pointTime(point.timestamp, receivedAtMs, limits)
  if (!time.ok) errors.push({ path: keyPath(path, 'timestamp'), message: time.message })
  if (point.type !== undefined) {
    const problem = tagValueProblem(point.type, MAX_TYPE_LENGTH)
    if (problem) errors.push({ path: keyPath(path, 'type'), message: problem })
  }
  if (point.metadata !== undefined) {
    const problem = metadataProblem(point.metadata, limits)
    if (problem) errors.push({ path: keyPath(path, 'metadata'), message: problem })
  }
  const data = flattenData(point.data, keyPath(path, 'data'), limits, errors)
  if (!time.ok || !data || errors.length > before) return undefined
  const stored: StoredPoint = { t: time.ms, data }
  if (point.type !== undefined) stored.type = point.type
  if (point.metadata !== undefined) stored.metadata = point.metadata
  return stored
}

function pointTime(timestamp: unknown, receivedAtMs: number, limits: TelemetryLimits) {
  if (timestamp === undefined) return { ok: true as const, ms: receivedAtMs }
  const parsed = toEpochMillis(timestamp)
  if (!parsed.ok) return parsed
  const problem = timeProblem(parsed.ms, receivedAtMs, limits)
  return problem ? { ok: false as const, message: problem } : parsed
}

/** Why a point's time (epoch ms) is refused: too early, past retention, or too far ahead. */
export function timeProblem(ms: number, receivedAtMs: number, limits: TelemetryLimits): string | undefined {
  if (ms < limits.minTimeMs) return `is before ${new Date(limits.minTimeMs).toISOString()}`
  if (limits.maxAgeMs > 0 && ms < receivedAtMs - limits.maxAgeMs)
    return `is older than the retention period (${limits.maxAgeMs / 86_400_000} days)`
  if (ms > receivedAtMs + limits.maxFutureMs)
    return `is more than ${limits.maxFutureMs / 3_600_000} h ahead of the server clock`
  return undefined
}

/** Metadata is stored as JSON beside the point: bounded in depth (before serialising) and size. */
function metadataProblem(metadata: Record<string, unknown>, limits: TelemetryLimits): string | undefined {
  const stack: [unknown, number][] = [[metadata, 1]]
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number]
    if (typeof value === 'string') {
      const problem = storableStringProblem(value)
      if (problem) return `holds a string that ${problem}`
      continue
    }
    if (value === null || typeof value !== 'object') continue
    if (depth > MAX_METADATA_DEPTH) return `nests deeper than ${MAX_METADATA_DEPTH} levels`
    for (const [key, child] of Object.entries(value)) stack.push([key, depth], [child, depth + 1])
  }
  const bytes = Buffer.byteLength(JSON.stringify(metadata))
  return bytes > limits.maxMetadataBytes
    ? `is ${bytes} bytes of JSON, more than ${limits.maxMetadataBytes}`
    : undefined
}

function envelopeErrors(point: object, path: string): ErrorDetail[] {
  const known = new Set(Object.keys(PointEnvelope.properties))
  const unknownKeys = Object.keys(point).filter((key) => !known.has(key))
  if (unknownKeys.length > 0) {
    return unknownKeys.map((key) => ({
      path: keyPath(path, key),
      message: 'is not a point property (allowed: timestamp, data, type, metadata)',
    }))
  }
  const errors: ErrorDetail[] = []
  const seen = new Set<string>()
  for (const error of envelope.Errors(point)) {
    const property = error.path.split('/')[1] ?? ''
    const at = property ? keyPath(path, property) : path || BODY
    if (seen.has(at)) continue
    seen.add(at)
    errors.push({ path: at, message: envelopeMessage(property, error.value) })
  }
  return errors
}

function envelopeMessage(property: string, value: unknown): string {
  const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value
  switch (property) {
    case 'data':
      return value === undefined
        ? 'is required: an object of fields'
        : `must be an object of fields (got ${got})`
    case 'timestamp':
      return `must be an ISO-8601 string or an epoch number (got ${got})`
    case 'type':
      return `must be a string (got ${got})`
    case 'metadata':
      return `must be an object (got ${got})`
    default:
      return 'is invalid'
  }
}
