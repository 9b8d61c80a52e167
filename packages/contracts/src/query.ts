import { type Static, Type } from '@sinclair/typebox'
import { toEpochMillis } from './timestamps.js'

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const
const RELATIVE = /^-(\d+)(s|m|h|d|w)$/
const WINDOW = /^(\d+)(s|m|h|d)$/

export type Parsed = { ok: true; ms: number } | { ok: false; message: string }

/** `start`/`end` of the query routes: ISO-8601, epoch seconds or ms, `now`, or relative (`-1h`, `-7d`). */
export function parseTimeParam(value: string, nowMs: number): Parsed {
  if (value === 'now') return { ok: true, ms: nowMs }
  const relative = RELATIVE.exec(value)
  if (relative)
    return { ok: true, ms: nowMs - Number(relative[1]) * UNIT_MS[relative[2] as keyof typeof UNIT_MS] }
  const asNumber = /^\d+(\.\d+)?$/.test(value) ? Number(value) : value
  const parsed = toEpochMillis(asNumber)
  return parsed.ok
    ? parsed
    : { ok: false, message: 'must be ISO-8601, epoch, now, or relative like -1h or -7d' }
}

export const MIN_WINDOW_MS = 1000
export const MAX_WINDOW_MS = 86_400_000

/** Aggregation windows from 1s to 1d: `30s`, `1m`, `15m`, `1h`, `1d`. */
export function parseWindow(value: string): Parsed {
  const match = WINDOW.exec(value)
  const ms = match ? Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS] : Number.NaN
  if (!(ms >= MIN_WINDOW_MS && ms <= MAX_WINDOW_MS)) {
    return { ok: false, message: 'must be a window from 1s to 1d, such as 30s, 1m, 1h or 1d' }
  }
  return { ok: true, ms }
}

const TimeParam = (description: string) =>
  Type.String({
    description: `${description}: ISO-8601, epoch, now, or relative like -1h, -7d`,
    examples: ['-1h'],
  })

export const DeviceIdPath = Type.Object({ device_id: Type.Integer({ minimum: 1 }) })

export const RawQuery = Type.Object(
  {
    start: Type.Optional(TimeParam('from (inclusive; default -1h)')),
    end: Type.Optional(TimeParam('to (exclusive; default now)')),
    fields: Type.Optional(Type.String({ description: 'comma-separated field names; default all' })),
    limit: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
    cursor: Type.Optional(Type.String({ description: 'next_cursor of the previous page' })),
  },
  { additionalProperties: false },
)
export type RawQuery = Static<typeof RawQuery>

export const TelemetryPage = Type.Object(
  {
    device_id: Type.Integer(),
    points: Type.Array(
      Type.Object({
        timestamp: Type.String({ format: 'date-time' }),
        type: Type.Union([Type.String(), Type.Null()]),
        data: Type.Record(Type.String(), Type.Unknown()),
      }),
    ),
    next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'null on the last page' }),
  },
  { title: 'TelemetryPage' },
)

export const LatestValues = Type.Object(
  {
    device_id: Type.Integer(),
    fields: Type.Record(
      Type.String(),
      Type.Object({ value: Type.Unknown(), timestamp: Type.String({ format: 'date-time' }) }),
    ),
  },
  { title: 'LatestValues' },
)

export type Aggregation = 'mean' | 'min' | 'max' | 'sum' | 'count' | 'first' | 'last'

export const AggregatedQuery = Type.Object(
  {
    field: Type.String({ minLength: 1 }),
    aggregation: Type.Union(
      [
        Type.Literal('mean'),
        Type.Literal('min'),
        Type.Literal('max'),
        Type.Literal('sum'),
        Type.Literal('count'),
        Type.Literal('first'),
        Type.Literal('last'),
      ],
      { default: 'mean' },
    ),
    window: Type.String({ default: '1m', description: '1s to 1d: 30s, 1m, 15m, 1h, 1d' }),
    start: Type.Optional(TimeParam('from (inclusive; default -1h)')),
    end: Type.Optional(TimeParam('to (exclusive; default now)')),
  },
  { additionalProperties: false },
)
export type AggregatedQuery = Static<typeof AggregatedQuery>

export const AggregatedSeries = Type.Object(
  {
    device_id: Type.Integer(),
    field: Type.String(),
    aggregation: Type.String(),
    window: Type.String(),
    buckets: Type.Array(
      Type.Object({ timestamp: Type.String({ format: 'date-time' }), value: Type.Unknown() }),
      { description: 'windows holding at least one value of the field, oldest first' },
    ),
  },
  { title: 'AggregatedSeries' },
)
