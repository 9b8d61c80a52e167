/** Raised by `withDeadline` when the promise has not settled in time. */
export class DeadlineExceededError extends Error {
  override name = 'DeadlineExceededError'
}

/**
 * The outcome of `promise`, or a DeadlineExceededError after `ms`. The promise itself runs on (its
 * later rejection is swallowed here); only the wait for it is bounded.
 */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceededError(`${what}: no answer after ${ms} ms`)), ms)
  })
  promise.catch(() => {})
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}
