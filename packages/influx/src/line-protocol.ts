import { type DeviceBatch, RememberedNames } from '@iotflow/contracts'

export const MEASUREMENT = 'telemetry'

// Line protocol escaping, as the InfluxDB client library does it: in tag keys, tag values and field
// keys a comma, space, `=` and the whitespace controls get a backslash; string values are quoted
// with `"` and `\` escaped. Written by hand, one string per point: building the library's Point
// objects for every point took a quarter of the InfluxDB writer's time, most of it in the GC.
const KEY_SPECIAL = /[, =\n\r\t]/g
const keyEscapes: Record<string, string> = {
  ',': '\\,',
  ' ': '\\ ',
  '=': '\\=',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
}
const escapeKey = (key: string) => key.replace(KEY_SPECIAL, (c) => keyEscapes[c] as string)
const quote = (value: string) => `"${value.replace(/["\\]/g, '\\$&')}"`

// Field names repeat in every point: each is escaped once.
const escapedNames = new RememberedNames<string>()
const fieldKey = (name: string): string =>
  escapedNames.get(name) ?? escapedNames.remember(name, escapeKey(name))

function fieldValue(value: string | number | boolean): string {
  // Every number is a float (no `i` suffix), so 50 and 50.0 are one field type and never conflict.
  if (typeof value === 'number') return String(value)
  if (typeof value === 'boolean') return value ? 'T' : 'F'
  return quote(value)
}

/**
 * One line per point: measurement `telemetry`, tags device_id, device_type and type (when sent),
 * in key order, fields in name order, timestamp in ms (written with precision=ms).
 */
export function batchToLines(batch: DeviceBatch): string[] {
  let series = `${MEASUREMENT},device_id=${batch.device_id}`
  if (batch.device_type) series += `,device_type=${escapeKey(batch.device_type)}`
  const lines: string[] = []
  for (const point of batch.points) {
    const names = Object.keys(point.data).sort()
    if (names.length === 0) continue
    let fields = ''
    for (const name of names) {
      if (fields) fields += ','
      fields += `${fieldKey(name)}=${fieldValue(point.data[name] as string | number | boolean)}`
    }
    const tags = point.type ? `${series},type=${escapeKey(point.type)}` : series
    lines.push(`${tags} ${fields} ${point.t}`)
  }
  return lines
}
