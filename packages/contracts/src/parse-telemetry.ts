import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { ErrorDetail } from './errors.js'
import { type StoredPoint, TelemetryPoint } from './telemetry.js'
import { toEpochMillis } from './timestamps.js'

export interface TelemetryLimits {
  /** Points in one request. */
  maxPoints: number
  /** Earliest accepted time, epoch ms. */
  minTimeMs: number
  /** How far ahead of the receive time a point may be, ms. */
  maxFutureMs: number
}

export const defaultTelemetryLimits: TelemetryLimits = {
  maxPoints: 10_000,
  minTimeMs: Date.UTC(2000, 0, 1),
  maxFutureMs: 24 * 60 * 60 * 1000,
}

export type ParseResult = { ok: true; points: StoredPoint[] } | { ok: false; errors: ErrorDetail[] }

const pointChecker = TypeCompiler.Compile(TelemetryPoint)
const MAX_REPORTED_ERRORS = 100

/**
 * Validates any of the three body shapes and normalises it into stored points. All or nothing:
 * one bad point refuses the whole request, and every bad point is reported (up to a cap).
 */
export function parseTelemetryBody(
  body: unknown,
  receivedAtMs: number,
  limits: TelemetryLimits = defaultTelemetryLimits,
): ParseResult {
  const shape = pointsOf(body)
  if ('error' in shape) return { ok: false, errors: [shape.error] }
  const { points, pathOf } = shape
  if (points.length === 0) return { ok: false, errors: [{ path: pathOf(null), message: 'holds no points' }] }
  if (points.length > limits.maxPoints) {
    return {
      ok: false,
      errors: [
        { path: pathOf(null), message: `holds ${points.length} points, more than ${limits.maxPoints}` },
      ],
    }
  }

  const errors: ErrorDetail[] = []
  const stored: StoredPoint[] = []
  for (let index = 0; index < points.length && errors.length < MAX_REPORTED_ERRORS; index++) {
    const point = points[index]
    const base = pathOf(index)
    if (!pointChecker.Check(point)) {
      errors.push(...pointErrors(point, base))
      continue
    }
    const time = pointTime(point.timestamp, receivedAtMs, limits)
    if (!time.ok) {
      errors.push({ path: join(base, 'timestamp'), message: time.message })
      continue
    }
    stored.push(
      point.type === undefined
        ? { t: time.ms, data: point.data }
        : { t: time.ms, type: point.type, data: point.data },
    )
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, points: stored }
}

type Shape = { points: unknown[]; pathOf: (index: number | null) => string } | { error: ErrorDetail }

function pointsOf(body: unknown): Shape {
  if (Array.isArray(body)) return { points: body, pathOf: (i) => (i === null ? '(body)' : `[${i}]`) }
  if (body === null || typeof body !== 'object') {
    return { error: { path: '(body)', message: 'must be a JSON object or array of points' } }
  }
  if ('points' in body) {
    const { points, ...rest } = body as { points: unknown }
    const extra = Object.keys(rest)
    if (extra.length > 0) {
      return { error: { path: extra[0] as string, message: 'is not allowed beside points' } }
    }
    if (!Array.isArray(points)) return { error: { path: 'points', message: 'must be an array of points' } }
    return { points, pathOf: (i) => (i === null ? 'points' : `points[${i}]`) }
  }
  return { points: [body], pathOf: () => '' }
}

function pointTime(
  timestamp: unknown,
  receivedAtMs: number,
  limits: TelemetryLimits,
): { ok: true; ms: number } | { ok: false; message: string } {
  if (timestamp === undefined) return { ok: true, ms: receivedAtMs }
  const parsed = toEpochMillis(timestamp)
  if (!parsed.ok) return parsed
  if (parsed.ms < limits.minTimeMs) {
    return { ok: false, message: `is before ${new Date(limits.minTimeMs).toISOString()}` }
  }
  if (parsed.ms > receivedAtMs + limits.maxFutureMs) {
    return { ok: false, message: `is more than ${limits.maxFutureMs / 3_600_000} h in the future` }
  }
  return parsed
}

function pointErrors(point: unknown, base: string): ErrorDetail[] {
  const seen = new Set<string>()
  const errors: ErrorDetail[] = []
  for (const error of pointChecker.Errors(point)) {
    const path = join(base, jsonPointerToPath(error.path))
    // A union reports once per branch; the first message per path is the useful one.
    if (seen.has(path)) continue
    seen.add(path)
    errors.push({ path, message: describe(error.message, error.value) })
  }
  return errors
}

function describe(message: string, value: unknown): string {
  if (message === 'Expected union value') {
    return `must be a number, boolean or string (got ${value === null ? 'null' : typeof value})`
  }
  return message.charAt(0).toLowerCase() + message.slice(1)
}

/** `/data/humidity` → `data.humidity`; `/0/data` → `[0].data`. */
function jsonPointerToPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((segment) => (/^\d+$/.test(segment) ? `[${segment}]` : `.${segment}`))
    .join('')
    .replace(/^\./, '')
}

function join(base: string, rest: string): string {
  if (!base) return rest || '(body)'
  if (!rest) return base
  return rest.startsWith('[') ? `${base}${rest}` : `${base}.${rest}`
}
