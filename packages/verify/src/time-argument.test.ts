import { describe, expect, it } from 'vitest'
import { parseTimeArgument } from './time-argument.js'

describe('parseTimeArgument', () => {
  const now = Date.UTC(2026, 10, 28, 12)
  it('reads ISO-8601, epoch ms and times relative to now', () => {
    expect(parseTimeArgument('2026-11-28T10:00:00Z', now)).toBe(Date.UTC(2026, 10, 28, 10))
    expect(parseTimeArgument('2026-11-28', now)).toBe(Date.UTC(2026, 10, 28))
    expect(parseTimeArgument('1795000000000', now)).toBe(1795000000000)
    expect(parseTimeArgument('-1h', now)).toBe(now - 3_600_000)
    expect(parseTimeArgument('-2d', now)).toBe(now - 2 * 86_400_000)
    expect(parseTimeArgument('-90s', now)).toBe(now - 90_000)
  })

  it('refuses anything else, naming the accepted forms', () => {
    expect(() => parseTimeArgument('yesterday', now)).toThrow(/ISO-8601, epoch ms, or -30s/)
    expect(() => parseTimeArgument('-1w', now)).toThrow(/not a time: "-1w"/)
  })
})
