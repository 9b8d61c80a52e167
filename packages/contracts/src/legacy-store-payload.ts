import { type Static, Type } from '@sinclair/typebox'
import { DeviceBatch, DeviceColumns, MetadataObject, TraceParents, toColumns } from './device-columns.js'
import { dictionaryOf } from './dictionary-column.js'
import type { StoreBatchPayload } from './jobs.js'
import { FieldValue } from './telemetry.js'

/**
 * The last day a consumer accepts store jobs in the shapes queued before today's: each device batch
 * as `points` (before 2026-11-28), or as columns with a `type` and a `metadata` entry per point
 * (before 2026-11-30). Jobs of that age still waiting, or kept in the dead-letter set, are upgraded
 * as they enter a consumer (`upgradeLegacyStorePayload`, called only by packages/queue's
 * job-payloads.ts). After it, delete this file (docs/pipeline.md, "Job payloads").
 */
export const LEGACY_POINTS_PAYLOAD_END = '2027-06-30'

/** A device batch as columns queued before 2026-11-30: `type` and `metadata` one entry per point. */
export const PerPointDeviceColumns = Type.Object({
  device_id: Type.Integer(),
  device_type: Type.Optional(Type.String()),
  received_at: Type.Integer(),
  t: Type.Array(Type.Integer(), { minItems: 1 }),
  fields: Type.Array(Type.String()),
  values: Type.Array(Type.Array(Type.Union([FieldValue, Type.Null()]))),
  type: Type.Optional(Type.Array(Type.Union([Type.String(), Type.Null()]))),
  metadata: Type.Optional(Type.Array(Type.Union([MetadataObject, Type.Null()]))),
  traceparents: Type.Optional(TraceParents),
})
export type PerPointDeviceColumns = Static<typeof PerPointDeviceColumns>

/** A store job in any shape a consumer still accepts: device batches as points, or as columns of either kind. */
export const LegacyStoreBatchPayload = Type.Object({
  batch_id: Type.String(),
  batches: Type.Array(Type.Union([DeviceColumns, PerPointDeviceColumns, DeviceBatch]), { minItems: 1 }),
})
export type LegacyStoreBatchPayload = Static<typeof LegacyStoreBatchPayload>

/** The one upgrade of the older shapes: every device batch as today's columns. */
export function upgradeLegacyStorePayload(payload: LegacyStoreBatchPayload): StoreBatchPayload {
  return { ...payload, batches: payload.batches.map(upgradeDeviceBatch) }
}

function upgradeDeviceBatch(batch: LegacyStoreBatchPayload['batches'][number]): DeviceColumns {
  if ('points' in batch) return toColumns(batch)
  const { type, metadata, ...rest } = batch
  const columns: DeviceColumns = rest
  const types = Array.isArray(type) ? dictionaryOf(type) : type
  if (types) columns.type = types
  // Parsed from the job's JSON, no two points share a metadata object: one dictionary entry each.
  const metadataColumn = Array.isArray(metadata) ? dictionaryOf(metadata) : metadata
  if (metadataColumn) columns.metadata = metadataColumn
  return columns
}
