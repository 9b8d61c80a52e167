import { type Static, Type } from '@sinclair/typebox'
import { DeviceColumns, pointCount } from './device-columns.js'

/**
 * What each writer's job carries: the device batches queued together under one batch id. One
 * request of 1,000 points is one device batch; a group commit of 500 single-point requests from
 * 500 devices is one job with 500 device batches, so the queue costs the same per job either way.
 */
export const StoreBatchPayload = Type.Object({
  batch_id: Type.String(),
  batches: Type.Array(DeviceColumns, { minItems: 1 }),
})
export type StoreBatchPayload = Static<typeof StoreBatchPayload>

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

const AlertmanagerAlert = Type.Object({
  labels: Type.Record(Type.String(), Type.String()),
  annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
  startsAt: Type.String(),
  endsAt: Type.Optional(Type.String()),
})

/**
 * A delivery job: (rule, device) pairs whose current alert to post to Alertmanager (read when it is
 * sent, so a late retry never posts a state that has passed), messages to publish on MQTT, or a
 * body to post to a rule's webhook (its URL and secret are read when it is sent, never queued).
 * Alerts posted as queued are the shape of jobs queued before 2026-11-30, still delivered.
 */
export const AlertDeliveryPayload = Type.Union([
  Type.Object({
    target: Type.Literal('alertmanager-current'),
    keys: Type.Array(Type.Object({ rule_id: Type.Integer(), device_id: Type.Integer() })),
  }),
  Type.Object({ target: Type.Optional(Type.Literal('alertmanager')), alerts: Type.Array(AlertmanagerAlert) }),
  Type.Object({
    target: Type.Literal('mqtt'),
    messages: Type.Array(Type.Object({ topic: Type.String(), payload: Type.String() })),
  }),
  Type.Object({
    target: Type.Literal('webhook'),
    rule_id: Type.Integer(),
    transition_id: Type.Integer(),
    body: Type.String(),
  }),
])
export type AlertDeliveryPayload = Static<typeof AlertDeliveryPayload>
