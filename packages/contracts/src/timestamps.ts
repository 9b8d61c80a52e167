/** Epoch values below this are seconds, at or above it milliseconds (API.md). 1e11 s is year 5138. */
export const EPOCH_SECONDS_LIMIT = 1e11

// ISO-8601 date-time with an explicit offset (Z or ±hh:mm / ±hhmm); a date alone is not an instant.
const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|z|[+-]\d{2}:?\d{2})$/

export type TimestampResult = { ok: true; ms: number } | { ok: false; message: string }

/** Turns an API timestamp (ISO string, epoch seconds or epoch ms) into epoch milliseconds. */
export function toEpochMillis(value: unknown): TimestampResult {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return { ok: false, message: 'must be a finite number' }
    const ms = Math.abs(value) < EPOCH_SECONDS_LIMIT ? value * 1000 : value
    return { ok: true, ms: Math.round(ms) }
  }
  if (typeof value === 'string') return parseIso(value)
  return { ok: false, message: 'must be an ISO-8601 string or an epoch number' }
}

function parseIso(value: string): TimestampResult {
  const match = ISO_8601.exec(value)
  if (!match) {
    return { ok: false, message: 'must be ISO-8601 with an offset (e.g. 2026-01-01T00:00:00Z) or epoch' }
  }
  const part = (index: number) => Number(match[index] ?? 0)
  const [y, mo, d, h, mi, s] = [part(1), part(2), part(3), part(4), part(5), part(6)]
  // Date.parse rolls 2026-02-30 over to March; a date that does not exist is refused instead.
  const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate()
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth || h > 23 || mi > 59 || s > 59) {
    return { ok: false, message: 'is not a date and time that exists' }
  }
  const ms = Math.floor(Number(`0.${match[7] ?? '0'}`) * 1000)
  const utc = Date.UTC(y, mo - 1, d, h, mi, s) + ms
  return { ok: true, ms: utc - offsetMinutes(match[8] ?? 'Z') * 60_000 }
}

function offsetMinutes(offset: string): number {
  if (offset === 'Z' || offset === 'z') return 0
  const digits = offset.replace(':', '')
  const sign = digits.startsWith('-') ? -1 : 1
  return sign * (Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5)))
}
