export interface DependencyState {
  status: 'up' | 'down'
  error?: string
}

/** Runs a dependency check and reports it as up or down, never throwing. */
export async function probe(check: () => Promise<unknown>): Promise<DependencyState> {
  try {
    await check()
    return { status: 'up' }
  } catch (error) {
    return { status: 'down', error: (error as Error).message }
  }
}
