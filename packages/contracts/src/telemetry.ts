import { type Static, Type } from '@sinclair/typebox'

export const FieldValue = Type.Union([Type.Number(), Type.Boolean(), Type.String()])
export type FieldValue = Static<typeof FieldValue>

export const Timestamp = Type.Union(
  [
    Type.String({ description: 'ISO-8601 with offset, e.g. 2026-11-28T10:00:00.000Z' }),
    Type.Number({ description: 'epoch seconds (below 1e11) or epoch milliseconds' }),
  ],
  { description: 'when the point was measured; the receive time when absent' },
)

export const TelemetryPoint = Type.Object(
  {
    timestamp: Type.Optional(Timestamp),
    data: Type.Record(
      Type.String({ minLength: 1, maxLength: 128 }),
      Type.Union([FieldValue, Type.Object({})]),
      {
        minProperties: 1,
        description:
          'field name → number, boolean or string. Every number is stored as a float. Nested objects are ' +
          'flattened to dotted names (`{"gps": {"lat": 1}}` → `gps.lat`), up to 4 levels. A field keeps ' +
          'the type it was first stored with.',
        examples: [{ temperature: 21.5, humidity: 50, door_open: false, mode: 'eco' }],
      },
    ),
    type: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: 'kept as the `type` tag',
        examples: ['sensors'],
      }),
    ),
    metadata: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: 'kept beside the point in PostgreSQL (≤ 4 KB)',
      }),
    ),
  },
  { additionalProperties: false, $id: 'TelemetryPoint', title: 'TelemetryPoint' },
)
export type TelemetryPoint = Static<typeof TelemetryPoint>

export const TelemetryBatch = Type.Object(
  { points: Type.Array(Type.Ref('TelemetryPoint'), { minItems: 1 }) },
  { additionalProperties: false, title: 'TelemetryBatch' },
)

/** The three accepted body shapes of API.md: one point, `{points: [...]}`, or a bare array. */
export const TelemetryBody = Type.Union(
  [Type.Ref('TelemetryPoint'), TelemetryBatch, Type.Array(Type.Ref('TelemetryPoint'), { minItems: 1 })],
  { title: 'TelemetryBody' },
)

/** A point as it travels through the queue: epoch-millisecond time, flat fields. */
export const StoredPoint = Type.Object({
  t: Type.Integer({ description: 'epoch milliseconds' }),
  type: Type.Optional(Type.String()),
  data: Type.Record(Type.String(), FieldValue),
  metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
})
export type StoredPoint = Static<typeof StoredPoint>

export const IngestAccepted = Type.Object(
  {
    batch_id: Type.String({ description: 'look it up at GET /api/v1/ingest/{batch_id}' }),
    accepted: Type.Integer({ description: 'points queued' }),
  },
  { title: 'IngestAccepted' },
)
export type IngestAccepted = Static<typeof IngestAccepted>
