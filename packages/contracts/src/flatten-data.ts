import type { ErrorDetail } from './errors.js'
import type { TelemetryLimits } from './limits.js'
import { fieldNameProblem, storableStringProblem } from './names.js'
import { keyPath } from './paths.js'
import { RememberedNames } from './remembered-names.js'
import type { FieldValue } from './telemetry.js'

/**
 * Turns a point's `data` into flat fields: nested objects become dotted names (`{"gps": {"lat": 1}}`
 * → `gps.lat`), up to `maxNesting` levels. Checks every name and value; problems are appended to
 * `errors` with their path. Returns the fields, or undefined when any was refused.
 */
export function flattenData(
  data: Record<string, unknown>,
  path: string,
  limits: TelemetryLimits,
  errors: ErrorDetail[],
): Record<string, FieldValue> | undefined {
  if (isFlatAndValid(data, limits)) return data as Record<string, FieldValue>
  // A plain object is safe here: every name is checked before it is set, and names starting with
  // "_" (so `__proto__`) are refused.
  const fields: Record<string, FieldValue> = {}
  const before = errors.length
  let count = 0
  // Iterative walk (a hostile body may nest thousands of levels deep); the stack is only built
  // when a nested object is met, as this runs for every point.
  let frame: Frame | undefined = { object: data, prefix: '', path, depth: 0 }
  let stack: Frame[] | undefined
  while (frame) {
    const { object, prefix, path: at, depth } = frame
    let empty = true
    for (const key of Object.keys(object)) {
      empty = false
      const value = object[key]
      const name = prefix + key
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        if (depth + 1 > limits.maxNesting) {
          errors.push({
            path: keyPath(at, key),
            message: `nests objects deeper than ${limits.maxNesting} levels`,
          })
        } else {
          stack ??= []
          stack.push({
            object: value as Record<string, unknown>,
            prefix: `${name}.`,
            path: keyPath(at, key),
            depth: depth + 1,
          })
        }
        continue
      }
      // Paths are only built for a problem.
      const problem = knownNameProblem(name, limits.maxFieldNameLength) ?? valueProblem(value, limits)
      if (problem) {
        errors.push({ path: keyPath(at, key), message: problem })
        continue
      }
      if (depth > 0 && Object.hasOwn(fields, name)) {
        errors.push({
          path: keyPath(at, key),
          message: `names the field "${name}" twice (once nested, once dotted)`,
        })
        continue
      }
      fields[name] = value as FieldValue
      count++
    }
    if (empty) errors.push({ path: at, message: depth === 0 ? 'has no fields' : 'is an empty object' })
    frame = stack?.pop()
  }
  if (count > limits.maxFields)
    errors.push({ path, message: `has ${count} fields, more than ${limits.maxFields}` })
  return errors.length === before ? fields : undefined
}

/**
 * The common case, checked without copying: no nested object, every name and value acceptable, and
 * not too many fields. Such data is already its fields (as parsed from JSON: own data properties).
 */
function isFlatAndValid(data: Record<string, unknown>, limits: TelemetryLimits): boolean {
  let count = 0
  for (const key in data) {
    if (!Object.hasOwn(data, key)) return false
    const value = data[key]
    if (value !== null && typeof value === 'object') return false
    if (knownNameProblem(key, limits.maxFieldNameLength) ?? valueProblem(value, limits)) return false
    count++
  }
  return count > 0 && count <= limits.maxFields
}

interface Frame {
  object: Record<string, unknown>
  prefix: string
  path: string
  depth: number
}

// Each name is checked once, then remembered as good (per name-length limit, as limits may differ).
const goodNames = new Map<number, RememberedNames<true>>()

function knownNameProblem(name: string, maxLength: number): string | undefined {
  let good = goodNames.get(maxLength)
  if (!good) {
    good = new RememberedNames<true>()
    goodNames.set(maxLength, good)
  }
  if (good.get(name)) return undefined
  const problem = fieldNameProblem(name, maxLength)
  if (!problem) good.remember(name, true)
  return problem
}

function valueProblem(value: unknown, limits: TelemetryLimits): string | undefined {
  switch (typeof value) {
    case 'number':
      return Number.isFinite(value) ? undefined : 'must be a finite number'
    case 'boolean':
      return undefined
    case 'string':
      return value.length > limits.maxStringLength
        ? `is a string longer than ${limits.maxStringLength} characters`
        : storableStringProblem(value)
    default:
      return `must be a number, boolean or string (got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value})`
  }
}
