import { type Static, Type } from '@sinclair/typebox'
import { StoredPoint } from './telemetry.js'

/** What each writer receives: one device's batch, already validated and normalised. */
export const StoreBatchPayload = Type.Object({
  batch_id: Type.String(),
  device_id: Type.Integer(),
  device_type: Type.Optional(Type.String()),
  received_at: Type.Integer({ description: 'epoch ms at the gateway' }),
  points: Type.Array(StoredPoint, { minItems: 1 }),
})
export type StoreBatchPayload = Static<typeof StoreBatchPayload>

/** The parent job of a fan-out: completes once every store has the batch. */
export const BatchSummaryPayload = Type.Object({
  batch_id: Type.String(),
  device_id: Type.Integer(),
  points: Type.Integer(),
  received_at: Type.Integer(),
})
export type BatchSummaryPayload = Static<typeof BatchSummaryPayload>
