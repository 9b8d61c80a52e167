const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

/**
 * A point in time given on the command line: ISO-8601 (`2026-11-28T10:00:00Z`), epoch ms, or relative
 * to `now` (`-1h`, `-30m`, `-2d`, `-90s`). Throws with the accepted forms when it is none of them.
 */
export function parseTimeArgument(text: string, now = Date.now()): number {
  const relative = /^-(\d+)([smhd])$/.exec(text)
  if (relative) return now - Number(relative[1]) * UNIT_MS[relative[2] as keyof typeof UNIT_MS]
  if (/^\d+$/.test(text)) return Number(text)
  const parsed = Date.parse(text)
  if (/^\d{4}-\d{2}-\d{2}/.test(text) && !Number.isNaN(parsed)) return parsed
  throw new Error(`not a time: ${JSON.stringify(text)} (use ISO-8601, epoch ms, or -30s / -15m / -1h / -2d)`)
}
