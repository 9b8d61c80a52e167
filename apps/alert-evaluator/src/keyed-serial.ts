/**
 * Runs tasks one after another per key, in the order they were handed in, and tasks without a
 * key in common at the same time. A task with several keys waits for the earlier tasks of each.
 */
export function keyedSerial() {
  const tails = new Map<string, Promise<void>>()
  return async function run<T>(keys: readonly string[], task: () => Promise<T>): Promise<T> {
    const earlier = keys.flatMap((key) => tails.get(key) ?? [])
    let release = () => {}
    const done = new Promise<void>((resolve) => {
      release = resolve
    })
    for (const key of keys) tails.set(key, done)
    try {
      await Promise.all(earlier)
      return await task()
    } finally {
      release()
      for (const key of keys) if (tails.get(key) === done) tails.delete(key)
    }
  }
}
