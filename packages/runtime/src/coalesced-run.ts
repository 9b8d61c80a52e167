/**
 * `run` made safe to call at any rate: one run at a time, and calls during a run share exactly one
 * more run after it (what they were made for may have come too late for the running one). Each
 * call resolves once a run that started after it has finished; `run` must not reject.
 */
export function coalescedRun(run: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined
  let queued: Promise<void> | undefined
  const start = (): Promise<void> => {
    running = run().finally(() => {
      running = undefined
    })
    return running
  }
  return () => {
    if (!running) return start()
    queued ??= running.then(() => {
      queued = undefined
      return start()
    })
    return queued
  }
}
