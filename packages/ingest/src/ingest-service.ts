import {
  defaultTelemetryLimits,
  type ErrorDetail,
  indexPath,
  parseTelemetryBody,
  type RateLimit,
  type StoredPoint,
  type TelemetryLimits,
} from '@iotflow/contracts'
import type { Admission, BatchEnqueuer } from '@iotflow/queue'
import type { Context } from '@opentelemetry/api'
import type { DeviceRateLimiter, RateCharge, RateVerdict } from './device-rate-limiter.js'
import type { FieldTypeRegistry } from './field-type-registry.js'
import { enqueueTraced } from './traced-enqueue.js'

export interface IngestDevice {
  id: number
  device_type: string
  /** Its own rate limit; null or absent: the default. */
  rate_limit?: RateLimit | null
}

/** Over the device's rate limit: nothing was queued; enough tokens are back after `retryAfterSeconds`. */
export type RateLimited = { status: 429; retryAfterSeconds: number; message: string }

export type IngestOutcome =
  | { status: 202; batchId: string; accepted: number }
  | { status: 400 | 413; message: string; errors: ErrorDetail[] }
  | RateLimited

const unavailable = {
  queue: 'the queue is unavailable',
  'field-types': 'the field type registry is unavailable',
  devices: 'the device registry is unavailable',
  'rate-limits': 'the rate limiter is unavailable',
}

/** A dependency the ingest path needs is down: nothing was queued, the sender should retry later. */
export class IngestUnavailableError extends Error {
  constructor(
    readonly dependency: keyof typeof unavailable,
    options: { cause: unknown },
  ) {
    super(unavailable[dependency], options)
    this.name = 'IngestUnavailableError'
  }
}

/** Points of one device, already validated and normalised (e.g. from line protocol). */
export interface DevicePoints {
  device: IngestDevice
  points: StoredPoint[]
}

export type PointsOutcome =
  | { status: 202; accepted: number; batchIds: string[] }
  | Extract<IngestOutcome, { status: 400 | 413 }>
  | RateLimited

export interface IngestServiceOptions {
  fieldTypes: FieldTypeRegistry
  enqueuer: BatchEnqueuer
  limits?: TelemetryLimits
  /** Per-device rate limits; absent: none. */
  rateLimiter?: DeviceRateLimiter | undefined
}

/**
 * The one ingest path of HTTP and MQTT: validate and normalise, check field types and the device's
 * rate limit, then queue the batch for both stores. Resolves 202 only once Redis has accepted the batch.
 */
export function createIngestService({
  fieldTypes,
  enqueuer,
  limits = defaultTelemetryLimits,
  rateLimiter,
}: IngestServiceOptions) {
  return {
    /** `trace`: the request's (or message's) span context, when tracing is on (traced-enqueue.ts). */
    async ingest(
      device: IngestDevice,
      body: unknown,
      receivedAt = Date.now(),
      trace?: Context,
    ): Promise<IngestOutcome> {
      const parsed = parseTelemetryBody(body, receivedAt, limits)
      if (!parsed.ok) return refused(parsed.status, parsed.errors)

      const pointPath = (index: number) => (parsed.base === null ? '' : indexPath(parsed.base, index))
      let typeErrors: ErrorDetail[]
      try {
        typeErrors = await fieldTypes.check(parsed.points, pointPath)
      } catch (cause) {
        throw new IngestUnavailableError('field-types', { cause })
      }
      if (typeErrors.length > 0) return refused(400, typeErrors)

      // The rate check runs while the batch gathers for its group commit (the enqueuer awaits it
      // before the MULTI and leaves the batch out if refused): it adds no wait of its own. A device
      // far from its limit is admitted without asking Redis, its tokens taken in the MULTI.
      const admission = deferredAdmission(rateLimiter, {
        deviceId: device.id,
        rateLimit: device.rate_limit,
        points: parsed.points.length,
      })
      admission.catch(() => {}) // its failure is answered through the enqueue; never unhandled
      try {
        const batch = {
          device_id: device.id,
          device_type: device.device_type,
          received_at: receivedAt,
          points: parsed.points,
        }
        const [queued] = await enqueueTraced(trace, [batch], async ([traced]) => [
          await enqueuer.enqueue(traced as typeof batch, admission),
        ])
        const { batchId } = queued as { batchId: string }
        return { status: 202, batchId, accepted: parsed.points.length }
      } catch (cause) {
        if (cause instanceof RateRefused) return rateRefusal(cause.verdict)
        if (cause instanceof IngestUnavailableError) throw cause
        throw new IngestUnavailableError('queue', { cause })
      }
    },

    /**
     * Points other parsers validated (line protocol), of one device or many: field types checked
     * across all of them, then one batch per device queued in one MULTI (all or none). `pointPath`
     * names the i-th point of the concatenation in errors.
     */
    async ingestPoints(
      batches: DevicePoints[],
      pointPath: (index: number) => string,
      receivedAt = Date.now(),
      trace?: Context,
    ): Promise<PointsOutcome> {
      // A request of one device (the usual line protocol body) is checked without a copy of its points.
      const points =
        batches.length === 1 ? (batches[0] as DevicePoints).points : batches.flatMap((b) => b.points)
      let typeErrors: ErrorDetail[]
      try {
        typeErrors = await fieldTypes.check(points, pointPath)
      } catch (cause) {
        throw new IngestUnavailableError('field-types', { cause })
      }
      if (typeErrors.length > 0) return refused(400, typeErrors) as PointsOutcome

      const admitted = await admitRate(
        rateLimiter,
        batches.map(({ device, points }) => ({
          deviceId: device.id,
          rateLimit: device.rate_limit,
          points: points.length,
        })),
      )
      if (!admitted.ok) return rateRefusal(admitted) as RateLimited
      try {
        const queued = await enqueueTraced(
          trace,
          batches.map(({ device, points }) => ({
            device_id: device.id,
            device_type: device.device_type,
            received_at: receivedAt,
            points,
          })),
          (traced) => enqueuer.enqueueMany(traced),
        )
        return { status: 202, accepted: points.length, batchIds: queued.map((q) => q.batchId) }
      } catch (cause) {
        throw new IngestUnavailableError('queue', { cause })
      }
    },
  }
}

export type IngestService = ReturnType<typeof createIngestService>

/** The rate limiter's verdict on a request's charges (admitted when there is no limiter). */
export async function admitRate(
  rateLimiter: DeviceRateLimiter | undefined,
  charges: RateCharge[],
): Promise<RateVerdict> {
  if (!rateLimiter) return { ok: true }
  try {
    return await rateLimiter.admit(charges)
  } catch (cause) {
    throw new IngestUnavailableError('rate-limits', { cause })
  }
}

const NO_TAKE: Promise<Admission> = Promise.resolve(undefined)

/**
 * The admission of one device's request queued through the group commit, for the enqueuer to await
 * at the flush: the take to ride its MULTI (none when there is no limit or it was taken in Redis),
 * or a RateRefused. A verdict the limiter reached without Redis costs one resolved promise.
 */
function deferredAdmission(
  rateLimiter: DeviceRateLimiter | undefined,
  charge: RateCharge,
): Promise<Admission> {
  if (!rateLimiter) return NO_TAKE
  try {
    const verdict = rateLimiter.admitDeferring(charge)
    if (!(verdict instanceof Promise)) return Promise.resolve(takeOf(verdict))
    return verdict.then(takeOf, (cause) => {
      throw new IngestUnavailableError('rate-limits', { cause })
    })
  } catch (cause) {
    return Promise.reject(
      cause instanceof RateRefused ? cause : new IngestUnavailableError('rate-limits', { cause }),
    )
  }
}

/** An admitted verdict's take; a refusal thrown, for the enqueuer to hand back to the ingest path. */
function takeOf(verdict: RateVerdict): Admission {
  if (!verdict.ok) throw new RateRefused(verdict)
  return verdict.take
}

/** Carries the rate limiter's refusal through the enqueuer to the ingest path that asked. */
class RateRefused extends Error {
  constructor(readonly verdict: Exclude<RateVerdict, { ok: true }>) {
    super(verdict.message)
    this.name = 'RateRefused'
  }
}

/** The outcome of a request the rate limiter refused. */
export function rateRefusal(verdict: Exclude<RateVerdict, { ok: true }>): IngestOutcome {
  const { ok: _, ...outcome } = verdict
  return outcome
}

/** A refusal: nothing of the request was queued. */
export function refused(status: 400 | 413, errors: ErrorDetail[]): IngestOutcome {
  const problems = `${errors.length} problem${errors.length === 1 ? '' : 's'}`
  const message =
    status === 413
      ? 'the telemetry is too large; nothing was queued'
      : `the telemetry is invalid (${problems}); nothing was queued`
  return { status, message, errors }
}

/** The limits of a request, from the TELEMETRY_* variables of packages/config. */
export function telemetryLimitsFrom(config: {
  TELEMETRY_MAX_POINTS: number
  TELEMETRY_MAX_FIELDS: number
  TELEMETRY_MAX_FIELD_NAME_LENGTH: number
  TELEMETRY_MAX_STRING_LENGTH: number
  TELEMETRY_MAX_NESTING: number
  TELEMETRY_MAX_METADATA_BYTES: number
  TELEMETRY_MIN_TIME: string
  TELEMETRY_MAX_FUTURE_SECONDS: number
  RETENTION_DAYS: number
}): TelemetryLimits {
  return {
    maxPoints: config.TELEMETRY_MAX_POINTS,
    maxFields: config.TELEMETRY_MAX_FIELDS,
    maxFieldNameLength: config.TELEMETRY_MAX_FIELD_NAME_LENGTH,
    maxStringLength: config.TELEMETRY_MAX_STRING_LENGTH,
    maxNesting: config.TELEMETRY_MAX_NESTING,
    maxMetadataBytes: config.TELEMETRY_MAX_METADATA_BYTES,
    minTimeMs: Date.parse(config.TELEMETRY_MIN_TIME),
    maxFutureMs: config.TELEMETRY_MAX_FUTURE_SECONDS * 1000,
    maxAgeMs: config.RETENTION_DAYS * 86_400_000,
  }
}
