/**
 * Rules for field names and tag values, so that every accepted name is stored exactly in both
 * stores. Line protocol escapes spaces, commas, `=` and quotes, and takes any Unicode, but cannot
 * carry control characters, and a trailing backslash would escape the separator after it.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this finds
const CONTROL = /[\u0000-\u001f\u007f]/

/** Tag keys of the `telemetry` measurement: a field of the same name would shadow them in queries. */
export const TAG_KEYS = ['device_id', 'device_type', 'type'] as const

export function fieldNameProblem(name: string, maxLength: number): string | undefined {
  if (name.length === 0) return 'is an empty field name'
  if (name.length > maxLength) return `is a field name longer than ${maxLength} characters`
  if (CONTROL.test(name)) return 'is a field name with a control character'
  if (!name.isWellFormed()) return 'is a field name with a lone UTF-16 surrogate'
  if (name.endsWith('\\')) return 'is a field name ending in a backslash'
  if (name === 'time') return 'is reserved by InfluxDB (the point time); use another field name'
  if (name.startsWith('_')) return 'starts with "_", which InfluxDB reserves'
  if ((TAG_KEYS as readonly string[]).includes(name)) return `is a tag of every point; use another field name`
  return undefined
}

export function tagValueProblem(value: string, maxLength: number): string | undefined {
  if (value.length === 0) return 'must not be empty'
  if (value.length > maxLength) return `must be at most ${maxLength} characters`
  if (CONTROL.test(value)) return 'must not contain control characters'
  if (!value.isWellFormed()) return 'must not contain a lone UTF-16 surrogate'
  if (value.endsWith('\\')) return 'must not end in a backslash'
  return undefined
}

/**
 * A string PostgreSQL's jsonb and InfluxDB store exactly: no NUL (jsonb refuses \u0000) and no lone
 * surrogate (it would reach InfluxDB as U+FFFD). Other control characters are fine in values.
 */
export function storableStringProblem(value: string): string | undefined {
  if (value.includes('\u0000')) return 'must not contain the NUL character (\\u0000)'
  if (!value.isWellFormed()) return 'must not contain a lone UTF-16 surrogate'
  return undefined
}
