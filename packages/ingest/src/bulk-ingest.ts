import {
  BODY,
  type ErrorDetail,
  indexPath,
  keyPath,
  parseTelemetryBody,
  type RateLimit,
  type StoredPoint,
  type TelemetryLimits,
} from '@iotflow/contracts'
import type { BatchEnqueuer } from '@iotflow/queue'
import type { Context } from '@opentelemetry/api'
import type { DeviceRateLimiter } from './device-rate-limiter.js'
import type { FieldTypeRegistry } from './field-type-registry.js'
import {
  admitRate,
  IngestUnavailableError,
  type RateLimited,
  rateRefusal,
  refused,
} from './ingest-service.js'
import { enqueueTraced } from './traced-enqueue.js'

/** An edge gateway and the devices it may speak for. */
export interface BulkSender {
  devices: Map<number, { device_type: string; status: 'active' | 'inactive'; rate_limit?: RateLimit | null }>
}

export type BulkOutcome =
  | { status: 202; accepted: number; batches: { device_id: number; batch_id: string; accepted: number }[] }
  | { status: 400 | 403 | 413; message: string; errors: ErrorDetail[] }
  | RateLimited

/**
 * One request from an edge gateway holding points of many devices, each naming its `device_id`.
 * Validated like any telemetry, refused whole if it names a device the gateway may not speak for,
 * then queued as one batch per device, all in one MULTI: every device's batch or none. Each device's
 * points count against its own rate limit; one device over it refuses the whole request.
 */
export function createBulkIngest(options: {
  fieldTypes: FieldTypeRegistry
  enqueuer: BatchEnqueuer
  limits: TelemetryLimits
  rateLimiter?: DeviceRateLimiter | undefined
}) {
  return async function ingestBulk(
    sender: BulkSender,
    body: unknown,
    receivedAt = Date.now(),
    trace?: Context,
  ): Promise<BulkOutcome> {
    const shape = Array.isArray(body)
      ? { points: body, base: '', wrap: (points: unknown[]) => points }
      : body !== null && typeof body === 'object' && Array.isArray((body as { points?: unknown }).points)
        ? {
            points: (body as { points: unknown[] }).points,
            base: 'points',
            wrap: (points: unknown[]) => ({ ...body, points }),
          }
        : undefined
    if (!shape) {
      return refused(400, [
        { path: BODY, message: 'must be {"points": [...]} or an array of points, each with device_id' },
      ]) as BulkOutcome
    }

    // device_id is this route's own property; the rest of each point is ordinary telemetry.
    const deviceIds: number[] = []
    const idErrors: ErrorDetail[] = []
    const stripped = shape.points.map((point, index) => {
      if (point === null || typeof point !== 'object' || Array.isArray(point)) return point
      const { device_id, ...rest } = point as { device_id?: unknown }
      if (typeof device_id !== 'number' || !Number.isInteger(device_id) || device_id < 1) {
        idErrors.push({
          path: keyPath(indexPath(shape.base, index), 'device_id'),
          message: 'must be a device id (a positive integer)',
        })
      }
      deviceIds.push(device_id as number)
      return rest
    })
    const parsed = parseTelemetryBody(shape.wrap(stripped), receivedAt, options.limits)
    if (!parsed.ok) return refused(parsed.status, [...idErrors, ...parsed.errors]) as BulkOutcome
    if (idErrors.length > 0) return refused(400, idErrors) as BulkOutcome

    const pointPath = (index: number) => indexPath(shape.base, index)
    const forbidden = deviceIds.flatMap((id, index) => {
      const device = sender.devices.get(id)
      if (device?.status === 'active') return []
      const message = device ? `device ${id} is inactive` : `this gateway may not send for device ${id}`
      return [{ path: keyPath(pointPath(index), 'device_id'), message }]
    })
    if (forbidden.length > 0) {
      return {
        status: 403,
        message: 'the batch names devices this gateway may not send for; nothing was queued',
        errors: forbidden,
      }
    }

    let typeErrors: ErrorDetail[]
    try {
      typeErrors = await options.fieldTypes.check(parsed.points, pointPath)
    } catch (cause) {
      throw new IngestUnavailableError('field-types', { cause })
    }
    if (typeErrors.length > 0) return refused(400, typeErrors) as BulkOutcome

    const byDevice = new Map<number, StoredPoint[]>()
    parsed.points.forEach((point, index) => {
      const id = deviceIds[index] as number
      const points = byDevice.get(id)
      if (points) points.push(point)
      else byDevice.set(id, [point])
    })
    const groups = [...byDevice]
    const admitted = await admitRate(
      options.rateLimiter,
      groups.map(([id, points]) => ({
        deviceId: id,
        rateLimit: sender.devices.get(id)?.rate_limit,
        points: points.length,
      })),
    )
    if (!admitted.ok) return rateRefusal(admitted) as BulkOutcome
    try {
      const queued = await enqueueTraced(
        trace,
        groups.map(([id, points]) => ({
          device_id: id,
          device_type: sender.devices.get(id)?.device_type,
          received_at: receivedAt,
          points,
        })),
        (traced) => options.enqueuer.enqueueMany(traced),
      )
      return {
        status: 202,
        accepted: parsed.points.length,
        batches: groups.map(([id, points], i) => ({
          device_id: id,
          batch_id: queued[i]?.batchId as string,
          accepted: points.length,
        })),
      }
    } catch (cause) {
      throw new IngestUnavailableError('queue', { cause })
    }
  }
}

export type BulkIngest = ReturnType<typeof createBulkIngest>
