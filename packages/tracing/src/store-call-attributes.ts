import { type DeviceColumns, pointCount } from '@iotflow/contracts'
import type { Attributes } from '@opentelemetry/api'
import { spanAttributes } from './tracer.js'

/** The attributes of a store call's span: the database system, points and devices written. */
export function storeCallAttributes(system: 'postgresql' | 'influxdb', batches: DeviceColumns[]): Attributes {
  let points = 0
  for (const batch of batches) points += pointCount(batch)
  return {
    'db.system.name': system,
    [spanAttributes.points]: points,
    [spanAttributes.deviceIds]: batches.map((batch) => batch.device_id),
  }
}
