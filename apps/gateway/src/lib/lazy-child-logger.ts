import type { FastifyBaseLogger } from 'fastify'
import type { Bindings, ChildLoggerOptions, LevelWithSilent } from 'pino'

const levelValues: Record<string, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Number.POSITIVE_INFINITY,
}

/** Whether the logger writes lines of this level (FastifyBaseLogger has no isLevelEnabled). */
export function isLevelEnabled(logger: FastifyBaseLogger, level: Exclude<Method, 'silent'>): boolean {
  return (levelValues[level] ?? 0) >= (levelValues[logger.level] ?? 0)
}

type Method = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent'

/**
 * A child logger that becomes a real pino child only when it first writes a line: Fastify makes one
 * per request, and building children that never write was a real share of the gateway's CPU
 * (docs/benchmarks.md). Lines, bindings and levels are exactly those of a pino child.
 */
export class LazyChildLogger implements FastifyBaseLogger {
  private real: FastifyBaseLogger | undefined
  private ownLevel: LevelWithSilent | undefined

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options?: ChildLoggerOptions,
  ) {
    this.ownLevel = options?.level as LevelWithSilent | undefined
  }

  get level(): LevelWithSilent {
    return (this.real?.level ?? this.ownLevel ?? this.parent.level) as LevelWithSilent
  }

  set level(level: LevelWithSilent) {
    this.ownLevel = level
    if (this.real) this.real.level = level
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return new LazyChildLogger(this, bindings, options)
  }

  private writer(method: Method): FastifyBaseLogger | undefined {
    if (method === 'silent' || !isLevelEnabled(this, method)) return undefined
    return this.materialize()
  }

  /** The real pino child (its lazy parents made real first). */
  materialize(): FastifyBaseLogger {
    if (!this.real) {
      const parent = this.parent instanceof LazyChildLogger ? this.parent.materialize() : this.parent
      this.real = parent.child(this.bindings, this.options)
      if (this.ownLevel) this.real.level = this.ownLevel
    }
    return this.real
  }

  // Methods on the prototype, not arrow-function fields: one of these is built per request.
  trace(...args: unknown[]): void {
    this.call('trace', args)
  }
  debug(...args: unknown[]): void {
    this.call('debug', args)
  }
  info(...args: unknown[]): void {
    this.call('info', args)
  }
  warn(...args: unknown[]): void {
    this.call('warn', args)
  }
  error(...args: unknown[]): void {
    this.call('error', args)
  }
  fatal(...args: unknown[]): void {
    this.call('fatal', args)
  }
  silent(): void {}

  private call(method: Exclude<Method, 'silent'>, args: unknown[]): void {
    const writer = this.writer(method)
    if (writer) (writer[method] as (...a: unknown[]) => void)(...args)
  }
}
