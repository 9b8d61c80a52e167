import type { DeviceColumns } from '@iotflow/contracts'

export const MEASUREMENT = 'telemetry'

// Line protocol escaping, as the InfluxDB client library does it: in tag keys, tag values and field
// keys a comma, space, `=` and the whitespace controls get a backslash; string values are quoted
// with `"` and `\` escaped. Written by hand, one string per point: the library's Point objects cost
// the writer much of its time (docs/benchmarks.md).
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

function fieldValue(value: string | number | boolean): string {
  // Every number is a float (no `i` suffix), so 50 and 50.0 are one field type and never conflict.
  if (typeof value === 'number') return String(value)
  if (typeof value === 'boolean') return value ? 'T' : 'F'
  return quote(value)
}

/**
 * One line per point: measurement `telemetry`, tags device_id and device_type, fields in name order,
 * timestamp in ms (written with precision=ms). The batch's fields are sorted and escaped once, not
 * per point. A point's `type` is not a tag: a device's points of one time are one point in InfluxDB
 * as in PostgreSQL, their fields merged, whatever their types (docs/telemetry-contract.md).
 */
export function batchToLines(batch: DeviceColumns): string[] {
  const { t, fields, values } = batch
  let series = `${MEASUREMENT},device_id=${batch.device_id}`
  if (batch.device_type) series += `,device_type=${escapeKey(batch.device_type)}`
  const order = fields.map((_, j) => j).sort((a, b) => compareNames(fields[a] as string, fields[b] as string))
  const keys = order.map((j) => `${escapeKey(fields[j] as string)}=`)
  const columns = order.map((j) => values[j] as (string | number | boolean | null)[])
  const lines: string[] = []
  for (let i = 0; i < t.length; i++) {
    let line = ''
    for (let k = 0; k < columns.length; k++) {
      const value = (columns[k] as (string | number | boolean | null)[])[i]
      if (value === null || value === undefined) continue
      line += `${line ? ',' : ''}${keys[k]}${fieldValue(value)}`
    }
    if (line) lines.push(`${series} ${line} ${t[i]}`)
  }
  return lines
}

// The order of Array.prototype.sort() without a comparator (UTF-16 code units), which the points'
// `Object.keys(data).sort()` used: lines stay byte for byte what they were.
const compareNames = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
