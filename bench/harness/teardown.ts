/**
 * Everything the bench starts (processes, databases, a private Redis) is registered here as it is
 * started, and undone in reverse order: at the end of each scenario, on failure, and on Ctrl-C or
 * SIGTERM. Each step has a deadline, so a stuck step cannot keep the others from running.
 */
export class Teardown {
  /** Set once a signal asked to stop: start nothing more. */
  stopping = false
  private readonly steps: { what: string; undo: () => Promise<unknown> }[] = []

  /** Registers `undo` and returns `value`, so a start and its undo read as one line. */
  add<T>(what: string, value: T, undo: (value: T) => Promise<unknown>): T {
    this.steps.push({ what, undo: () => undo(value) })
    return value
  }

  /** A teardown of its own (one scenario's) that runs in place, or with this one if it has not. */
  scope(what: string): Teardown {
    return this.add(what, new Teardown(), (scope) => scope.run())
  }

  /** Runs every step registered so far, newest first; failures are reported, not thrown. */
  async run(deadlineMs = 40_000): Promise<void> {
    for (let step = this.steps.pop(); step; step = this.steps.pop()) {
      let timer: NodeJS.Timeout | undefined
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), deadlineMs)
      })
      try {
        const outcome = await Promise.race([step.undo(), timedOut])
        if (outcome === 'timeout') console.error(`teardown: ${step.what} did not finish in ${deadlineMs} ms`)
      } catch (error) {
        console.error(`teardown: ${step.what} failed: ${(error as Error).message}`)
      } finally {
        clearTimeout(timer)
      }
    }
  }
}

/**
 * Runs `body`, then the teardown, whatever happens: an error, Ctrl-C (SIGINT) or SIGTERM. A signal
 * runs the teardown and exits with 130 (or 143); another signal a second later exits at once.
 */
export async function withTeardown<T>(body: (teardown: Teardown) => Promise<T>): Promise<T> {
  const teardown = new Teardown()
  let interrupted: Promise<never> | undefined
  let firstSignalAt = 0
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) {
      // Ctrl-C reaches us twice at once (from the terminal and forwarded by pnpm): only a signal
      // given later means "exit now".
      if (Date.now() - firstSignalAt > 1000) process.exit(1)
      return
    }
    firstSignalAt = Date.now()
    teardown.stopping = true
    console.error(`\n${signal}: stopping and cleaning up (again to exit at once) …`)
    interrupted = teardown.run().then(() => process.exit(signal === 'SIGINT' ? 130 : 143))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    return await body(teardown)
  } finally {
    // Interrupted, the body fails as its processes stop: wait for the teardown, which exits.
    if (interrupted) await interrupted
    await teardown.run()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
