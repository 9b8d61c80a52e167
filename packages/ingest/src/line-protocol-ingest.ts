import {
  type ErrorDetail,
  type FieldValue,
  fieldNameProblem,
  keyPath,
  type LineProtocolPoint,
  MAX_TYPE_LENGTH,
  type Precision,
  parseLineProtocol,
  type StoredPoint,
  storableStringProblem,
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

/** The points of one device, and the line each came from. */
interface DeviceLines {
  batch: DevicePoints
  lines: number[]
}

/** What a series (a measurement and its tags object, shared by the parser) maps to. */
type SeriesMapping = { device: IngestDevice; metadata: Record<string, string> | undefined } | Refusal

/**
 * What a tags object maps to, whatever the measurement: the device (or why not), then the metadata
 * (or why not). Made once per tags object, so lines sharing tags share one metadata object, which
 * toColumns then queues once (dictionary-column.ts).
 */
type TagsMapping =
  | { device: Refusal }
  | { device: IngestDevice; metadata: Record<string, string> | undefined; refusal?: Refusal }

const linePath = (line: number) => `line ${line}`
/** A race with another instance registering a field can turn up new conflicts; re-partitioned this often. */
const MAX_PARTITIONS = 3

/**
 * Line protocol into the shared ingest path. Each line becomes a point: its measurement the
 * point's `type`, its tags (but the device tag) its metadata, its fields the point's fields named
 * `<measurement>.<field>`, its time in ms (docs/telemetry-contract.md). A line that cannot be
 * parsed or breaks the telemetry contract refuses the request (400, naming the first); lines whose
 * fields conflict with registered types are dropped and the rest queued (422), as InfluxDB 2.x does.
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
    const parsed = parseLineProtocol(text, precision, { qualifyFields: true })
    if (!parsed.ok) return invalid(linePath(parsed.line), parsed.message)
    const total = parsed.points.length
    if (total === 0) return invalid('(body)', 'holds no lines of line protocol')
    if (total > limits.maxPoints) {
      const message = `holds ${total} lines, more than ${limits.maxPoints}`
      return {
        status: 413,
        message: `the body ${message}; split the batch`,
        errors: [{ path: '(body)', message }],
      }
    }

    const mapped = mapLines(parsed.points, sender, deviceTag, limits, receivedAt)
    if (!Array.isArray(mapped)) return mapped
    let groups = mapped
    const dropped: ErrorDetail[] = []
    for (let attempt = 1; ; attempt++) {
      // The line of each point, in the order ingestPoints numbers them: only an error needs it.
      let order: number[] | undefined
      const current = groups
      const outcome = await ingestService.ingestPoints(
        groups.map((group) => group.batch),
        (index) => {
          order ??= current.flatMap((group) => group.lines)
          return linePath(order[index] as number)
        },
        receivedAt,
        trace,
      )
      if (outcome.status === 202) {
        if (dropped.length === 0) return { status: 204, accepted: outcome.accepted }
        return partialWrite(outcome.accepted, total, dropped)
      }
      if (outcome.status === 413 || outcome.status === 429 || attempt === MAX_PARTITIONS) return outcome
      // Field type conflicts: drop the lines they name and queue the rest.
      const conflicting = new Set(outcome.errors.map((error) => lineOf(error.path)))
      dropped.push(...outcome.errors)
      groups = withoutLines(groups, conflicting)
      if (groups.length === 0) return partialWrite(0, total, dropped)
    }
  }
}

export type LineProtocolIngest = ReturnType<typeof createLineProtocolIngest>

/**
 * The lines as points, one group per device in the order devices first appear; or the refusal of
 * the first line that breaks the contract. What depends only on the tags (device, metadata) is
 * worked out once per tags object, a measurement and a field name once per request: the parser
 * hands the lines of one series the same tags object and the same names.
 */
function mapLines(
  points: LineProtocolPoint[],
  sender: LineProtocolSender,
  deviceTag: string,
  limits: TelemetryLimits,
  receivedAt: number,
): DeviceLines[] | Refusal {
  const groups = new Map<number, DeviceLines>()
  const goodNames = new Set<string>()
  // Times between these bounds are fine; outside, timeProblem says why.
  const earliest = Math.max(limits.minTimeMs, limits.maxAgeMs > 0 ? receivedAt - limits.maxAgeMs : -Infinity)
  const latest = receivedAt + limits.maxFutureMs
  const byTags = new Map<LineProtocolPoint['tags'], TagsMapping>()
  const goodMeasurements = new Set<string>()
  const mapSeries = (lp: LineProtocolPoint): SeriesMapping => {
    let tags = byTags.get(lp.tags)
    if (tags === undefined) {
      tags = mapTags(lp.tags, sender, deviceTag, limits)
      byTags.set(lp.tags, tags)
    }
    if (!('metadata' in tags)) return tags.device
    if (!goodMeasurements.has(lp.measurement)) {
      const typeProblem = tagValueProblem(lp.measurement, MAX_TYPE_LENGTH)
      if (typeProblem) return invalid('', `measurement "${lp.measurement}" ${typeProblem}`)
      goodMeasurements.add(lp.measurement)
    }
    return tags.refusal ?? { device: tags.device, metadata: tags.metadata }
  }
  let seriesTags: LineProtocolPoint['tags'] | null = null
  let seriesMeasurement = ''
  let series: SeriesMapping | undefined
  for (const lp of points) {
    if (lp.tags !== seriesTags || lp.measurement !== seriesMeasurement) {
      seriesTags = lp.tags
      seriesMeasurement = lp.measurement
      series = mapSeries(lp)
    }
    const { device, metadata } = series as Exclude<SeriesMapping, Refusal>
    if ('status' in (series as SeriesMapping)) return withLine(series as Refusal, lp.line)

    const fieldProblem = fieldsProblem(lp.fields, goodNames, limits)
    if (fieldProblem) {
      const [name, message] = fieldProblem
      const path = name === undefined ? linePath(lp.line) : keyPath(linePath(lp.line), name)
      return { status: 400, message: `${path}: ${message}`, errors: [{ path, message }] }
    }
    const t = lp.timeMs ?? receivedAt
    if (lp.timeMs !== undefined && (t < earliest || t > latest)) {
      const why = timeProblem(t, receivedAt, limits) as string
      return invalid(
        linePath(lp.line),
        `line ${lp.line}: the timestamp (${new Date(t).toISOString()}) ${why}`,
      )
    }

    const point: StoredPoint = { t, type: lp.measurement, data: lp.fields }
    if (metadata) point.metadata = metadata
    const group = groups.get(device.id)
    if (group) {
      group.batch.points.push(point)
      group.lines.push(lp.line)
    } else groups.set(device.id, { batch: { device, points: [point] }, lines: [lp.line] })
  }
  return [...groups.values()]
}

/** The device a tags object names and the metadata it gives, or why they are refused. */
function mapTags(
  sent: LineProtocolPoint['tags'],
  sender: LineProtocolSender,
  deviceTag: string,
  limits: TelemetryLimits,
): TagsMapping {
  const problem = (what: string, message: string) => invalid('', `${what} ${message}`)
  const refused = (refusal: Refusal): TagsMapping => ({ device: refusal })
  let tags = sent
  const named = tags?.[deviceTag]
  let device: IngestDevice
  if ('device' in sender) {
    device = sender.device
    if (named !== undefined && named !== String(device.id))
      return refused(forbidden('', `tag ${deviceTag}=${named} names another device than this key's`))
  } else {
    if (named === undefined)
      return refused(problem(`has no ${deviceTag} tag,`, 'which names the device with an edge gateway key'))
    const id = Number(named)
    const allowed = String(id) === named ? sender.gateway.devices.get(id) : undefined
    if (allowed?.status !== 'active') {
      const why = allowed ? `device ${named} is inactive` : `this gateway may not send for device ${named}`
      return refused(forbidden('', why))
    }
    device = { id, device_type: allowed.device_type }
  }
  if (named !== undefined && tags) {
    const { [deviceTag]: _, ...rest } = tags
    tags = Object.keys(rest).length > 0 ? rest : undefined
  }

  if (tags) {
    let bytes = 2
    for (const key in tags) {
      const value = tags[key] as string
      const tagProblem =
        tagValueProblem(key, limits.maxStringLength) ?? tagValueProblem(value, limits.maxStringLength)
      if (tagProblem) return { device, metadata: undefined, refusal: problem(`tag "${key}"`, tagProblem) }
      bytes += key.length + value.length + 6
    }
    // Metadata is bounded as JSON; the exact size is only measured when the estimate is near it.
    if (bytes * 3 > limits.maxMetadataBytes) {
      const json = Buffer.byteLength(JSON.stringify(tags))
      if (json > limits.maxMetadataBytes) {
        const refusal = problem('has tags of', `${json} bytes as JSON, more than ${limits.maxMetadataBytes}`)
        return { device, metadata: undefined, refusal }
      }
    }
  }
  return { device, metadata: tags as Record<string, string> | undefined }
}

/** A series' refusal, for the line that met it: its path and its number in the message. */
function withLine(refusal: Refusal, line: number): Refusal {
  const path = linePath(line)
  const message = `line ${line}: ${refusal.message}`
  return { status: refusal.status, message, errors: [{ path, message }] }
}

/**
 * The first problem of a line's fields (the field's name and why; no name when the line has too
 * many), as flattenData judges JSON fields. Names already found good in this request are not
 * checked again; the parser's numbers are always finite.
 */
function fieldsProblem(
  fields: Record<string, FieldValue>,
  goodNames: Set<string>,
  limits: TelemetryLimits,
): [string | undefined, string] | undefined {
  let count = 0
  for (const name in fields) {
    count++
    if (!goodNames.has(name)) {
      const problem = fieldNameProblem(name, limits.maxFieldNameLength)
      if (problem) return [name, problem]
      goodNames.add(name)
    }
    const value = fields[name]
    if (typeof value === 'string') {
      const problem =
        value.length > limits.maxStringLength
          ? `is a string longer than ${limits.maxStringLength} characters`
          : storableStringProblem(value)
      if (problem) return [name, problem]
    }
  }
  if (count > limits.maxFields) return [undefined, `has ${count} fields, more than ${limits.maxFields}`]
  return undefined
}

/** The groups without the given lines' points; groups left empty are gone. */
function withoutLines(groups: DeviceLines[], lines: Set<number>): DeviceLines[] {
  const kept: DeviceLines[] = []
  for (const { batch, lines: numbers } of groups) {
    const points: StoredPoint[] = []
    const left: number[] = []
    numbers.forEach((line, i) => {
      if (lines.has(line)) return
      points.push(batch.points[i] as StoredPoint)
      left.push(line)
    })
    if (points.length > 0) kept.push({ batch: { device: batch.device, points }, lines: left })
  }
  return kept
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
