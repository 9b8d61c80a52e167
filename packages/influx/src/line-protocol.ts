import { Point } from '@influxdata/influxdb-client'
import type { DeviceBatch } from '@iotflow/contracts'

export const MEASUREMENT = 'telemetry'

// Timestamps travel as epoch ms and are written with precision=ms.
const msTimestamps = { convertTime: (value: string | number | Date | undefined) => String(value) }

/**
 * One line per point: measurement `telemetry`, tags device_id, device_type and type (when sent).
 * Every number is written as a float, so 50 and 50.0 are one field type and never conflict.
 */
export function batchToLines(batch: DeviceBatch): string[] {
  const lines: string[] = []
  for (const point of batch.points) {
    const p = new Point(MEASUREMENT).tag('device_id', String(batch.device_id)).timestamp(point.t)
    if (batch.device_type) p.tag('device_type', batch.device_type)
    if (point.type) p.tag('type', point.type)
    for (const [name, value] of Object.entries(point.data)) {
      if (typeof value === 'number') p.floatField(name, value)
      else if (typeof value === 'boolean') p.booleanField(name, value)
      else p.stringField(name, value)
    }
    const line = p.toLineProtocol(msTimestamps)
    if (line) lines.push(line)
  }
  return lines
}
