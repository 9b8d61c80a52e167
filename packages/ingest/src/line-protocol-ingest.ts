import {
  type ErrorDetail,
  flattenData,
  type LineProtocolPoint,
  MAX_TYPE_LENGTH,
  type Precision,
  parseLineProtocol,
  type StoredPoint,
  type TelemetryLimits,
  tagValueProblem,
  timeProblem,
} from '@iotflow/contracts'
import type { Context } from '@opentelemetry/api'
import type { BulkSender } from './bulk-ingest.js'
import type { DevicePoints, IngestDevice, IngestService, RateLimited } from './ingest-service.js'

/** Who sent the lines: a device (its key), or an edge gateway naming each line's device in a tag. */
export type LineProtocolSender = { device: IngestDevice } | { gateway: BulkSender }

export type LineProtocolOutcome =
  | { status: 204; accepted: number }
  /** Lines whose field types conflict were dropped, the rest queued (InfluxDB 2.x's partial write). */
  | { status: 422; accepted: number; dropped: number; message: string; errors: ErrorDetail[] }
  | Refusal
  | { status: 413; message: string; errors: ErrorDetail[] }
  | RateLimited

/** Nothing of the request was queued. */
type Refusal = { status: 400 | 403; message: string; errors: ErrorDetail[] }

export interface LineProtocolIngestOptions {
  ingestService: IngestService
  limits: TelemetryLimits
  /** The tag naming the device of each line sent with an edge gateway key. */
  deviceTag?: string
}

interface MappedLine {
  line: number
  device: IngestDevice
  point: StoredPoint
}

const linePath = (line: number) => `line ${line}`
/** A race with another instance registering a field can turn up new conflicts; re-partitioned this often. */
const MAX_PARTITIONS = 3

/**
 * Line protocol into the shared ingest path. Each line becomes a point: its measurement the
 * point's `type`, its tags (but the device tag) its metadata, its fields the point's fields, its
 * time in ms. A line that cannot be parsed or broken the telemetry contract refuses the request
 * (400, naming the first); lines whose fields conflict with registered types are dropped and the
 * rest queued (422), as InfluxDB 2.x does.
 */
export function createLineProtocolIngest({
  ingestService,
  limits,
  deviceTag = 'device_id',
}: LineProtocolIngestOptions) {
  return async function ingestLineProtocol(
    sender: LineProtocolSender,
    text: string,
    precision: Precision,
    receivedAt = Date.now(),
    trace?: Context,
  ): Promise<LineProtocolOutcome> {
    const parsed = parseLineProtocol(text, precision)
    if (!parsed.ok) return invalid(linePath(parsed.line), parsed.message)
    if (parsed.points.length === 0) return invalid('(body)', 'holds no lines of line protocol')
    if (parsed.points.length > limits.maxPoints) {
      const message = `holds ${parsed.points.length} lines, more than ${limits.maxPoints}`
      return {
        status: 413,
        message: `the body ${message}; split the batch`,
        errors: [{ path: '(body)', message }],
      }
    }

    let lines: MappedLine[] = []
    for (const lp of parsed.points) {
      const mapped = mapLine(lp, sender, deviceTag, limits, receivedAt)
      if ('status' in mapped) return mapped
      lines.push(mapped)
    }

    const dropped: ErrorDetail[] = []
    for (let attempt = 1; ; attempt++) {
      const { batches, order } = byDevice(lines)
      const outcome = await ingestService.ingestPoints(
        batches,
        (index) => linePath((order[index] as MappedLine).line),
        receivedAt,
        trace,
      )
      if (outcome.status === 202) {
        if (dropped.length === 0) return { status: 204, accepted: outcome.accepted }
        return partialWrite(outcome.accepted, parsed.points.length, dropped)
      }
      if (outcome.status === 413 || outcome.status === 429 || attempt === MAX_PARTITIONS) return outcome
      // Field type conflicts: drop the lines they name and queue the rest.
      const conflicting = new Set(outcome.errors.map((error) => lineOf(error.path)))
      dropped.push(...outcome.errors)
      lines = lines.filter((mapped) => !conflicting.has(mapped.line))
      if (lines.length === 0) return partialWrite(0, parsed.points.length, dropped)
    }
  }
}

export type LineProtocolIngest = ReturnType<typeof createLineProtocolIngest>

function mapLine(
  lp: LineProtocolPoint,
  sender: LineProtocolSender,
  deviceTag: string,
  limits: TelemetryLimits,
  receivedAt: number,
): MappedLine | Refusal {
  const at = linePath(lp.line)
  const problem = (what: string, message: string) => invalid(at, `line ${lp.line}: ${what} ${message}`)

  let tags = lp.tags
  const named = tags?.[deviceTag]
  let device: IngestDevice
  if ('device' in sender) {
    device = sender.device
    if (named !== undefined && named !== String(device.id))
      return forbidden(at, `line ${lp.line}: tag ${deviceTag}=${named} names another device than this key's`)
  } else {
    if (named === undefined)
      return problem(`has no ${deviceTag} tag,`, 'which names the device with an edge gateway key')
    const id = Number(named)
    const allowed = String(id) === named ? sender.gateway.devices.get(id) : undefined
    if (allowed?.status !== 'active') {
      const why = allowed ? `device ${named} is inactive` : `this gateway may not send for device ${named}`
      return forbidden(at, `line ${lp.line}: ${why}`)
    }
    device = { id, device_type: allowed.device_type }
  }
  if (named !== undefined && tags) {
    const { [deviceTag]: _, ...rest } = tags
    tags = Object.keys(rest).length > 0 ? rest : undefined
  }

  const typeProblem = tagValueProblem(lp.measurement, MAX_TYPE_LENGTH)
  if (typeProblem) return problem(`measurement "${lp.measurement}"`, typeProblem)
  if (tags) {
    let bytes = 2
    for (const key in tags) {
      const value = tags[key] as string
      const tagProblem =
        tagValueProblem(key, limits.maxStringLength) ?? tagValueProblem(value, limits.maxStringLength)
      if (tagProblem) return problem(`tag "${key}"`, tagProblem)
      bytes += key.length + value.length + 6
    }
    // Metadata is bounded as JSON; the exact size is only measured when the estimate is near it.
    if (bytes * 3 > limits.maxMetadataBytes) {
      const json = Buffer.byteLength(JSON.stringify(tags))
      if (json > limits.maxMetadataBytes)
        return problem('has tags of', `${json} bytes as JSON, more than ${limits.maxMetadataBytes}`)
    }
  }
  const errors: ErrorDetail[] = []
  const data = flattenData(lp.fields, at, limits, errors)
  if (!data) return { status: 400, message: `${errors[0]?.path}: ${errors[0]?.message}`, errors }
  const t = lp.timeMs ?? receivedAt
  const whenProblem = lp.timeMs === undefined ? undefined : timeProblem(t, receivedAt, limits)
  if (whenProblem) return problem(`the timestamp (${new Date(t).toISOString()})`, whenProblem)

  const point: StoredPoint = { t, type: lp.measurement, data }
  if (tags) point.metadata = tags
  return { line: lp.line, device, point }
}

/** One batch per device, and the lines in the order the batches' points follow one another. */
function byDevice(lines: MappedLine[]): { batches: DevicePoints[]; order: MappedLine[] } {
  const groups = new Map<number, { batch: DevicePoints; lines: MappedLine[] }>()
  for (const mapped of lines) {
    const group = groups.get(mapped.device.id)
    if (group) {
      group.batch.points.push(mapped.point)
      group.lines.push(mapped)
    } else
      groups.set(mapped.device.id, {
        batch: { device: mapped.device, points: [mapped.point] },
        lines: [mapped],
      })
  }
  const all = [...groups.values()]
  return { batches: all.map((group) => group.batch), order: all.flatMap((group) => group.lines) }
}

/** The line number of an error path such as `line 7.data.temp`. */
function lineOf(path: string): number {
  return Number.parseInt(path.slice('line '.length), 10)
}

function partialWrite(accepted: number, total: number, errors: ErrorDetail[]): LineProtocolOutcome {
  const dropped = total - accepted
  const first = errors[0] ? `; ${errors[0].path}: ${errors[0].message}` : ''
  return {
    status: 422,
    accepted,
    dropped,
    message: `partial write: field type conflict: dropped=${dropped} line${dropped === 1 ? '' : 's'}, ${accepted} stored${first}`,
    errors,
  }
}

const invalid = (path: string, message: string): Refusal => ({
  status: 400 as const,
  message,
  errors: [{ path, message }],
})

const forbidden = (path: string, message: string): Refusal => ({
  status: 403 as const,
  message,
  errors: [{ path, message }],
})
