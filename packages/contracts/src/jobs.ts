import { type Static, Type } from '@sinclair/typebox'
import { DeviceBatch, DeviceColumns, pointCount, type QueuedDeviceBatch } from './device-columns.js'

/**
 * What each writer's job carries: the device batches queued together under one batch id. One
 * request of 1,000 points is one device batch; a group commit of 500 single-point requests from
 * 500 devices is one job with 500 device batches, so the queue costs the same per job either way.
 */
export const StoreBatchPayload = Type.Object({
  batch_id: Type.String(),
  batches: Type.Array(Type.Union([DeviceColumns, DeviceBatch]), { minItems: 1 }),
})
/** A store job's data: device batches as columns (or as points, in jobs queued by earlier versions). */
export type StoreBatchPayload = { batch_id: string; batches: QueuedDeviceBatch[] }

/** The points a store job carries. */
export function pointsInPayload(payload: StoreBatchPayload): number {
  let points = 0
  for (const batch of payload.batches) points += pointCount(batch)
  return points
}

/** The parent job of a fan-out: completes once every store has the batch. */
export const BatchSummaryPayload = Type.Object({
  batch_id: Type.String(),
  points: Type.Integer(),
  received_at: Type.Integer(),
  /** Points per device, so a device asking for the batch sees only its own share. */
  devices: Type.Array(Type.Object({ device_id: Type.Integer(), points: Type.Integer() })),
})
export type BatchSummaryPayload = Static<typeof BatchSummaryPayload>
