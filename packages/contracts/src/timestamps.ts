/** Epoch values below this are seconds, at or above it milliseconds (API.md). 1e11 s is year 5138. */
export const EPOCH_SECONDS_LIMIT = 1e11

// ISO-8601 date-time with an explicit offset (Z or ±hh:mm); a date alone is not a point in time.
const ISO_8601 = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i

export type TimestampResult = { ok: true; ms: number } | { ok: false; message: string }

/** Turns an API timestamp (ISO string, epoch seconds or epoch ms) into epoch milliseconds. */
export function toEpochMillis(value: unknown): TimestampResult {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return { ok: false, message: 'must be a finite number' }
    const ms = Math.abs(value) < EPOCH_SECONDS_LIMIT ? value * 1000 : value
    return { ok: true, ms: Math.round(ms) }
  }
  if (typeof value === 'string') {
    if (!ISO_8601.test(value)) {
      return { ok: false, message: 'must be ISO-8601 with an offset (e.g. 2026-01-01T00:00:00Z) or epoch' }
    }
    const ms = Date.parse(value)
    if (Number.isNaN(ms)) return { ok: false, message: 'is not a valid date' }
    return { ok: true, ms }
  }
  return { ok: false, message: 'must be an ISO-8601 string or an epoch number' }
}
