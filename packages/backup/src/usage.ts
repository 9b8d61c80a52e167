/** Prints what is wrong with the command line, and how to use it; exits 2 (nothing was done). */
export function exitWithUsage(usage: string, problem: string): never {
  console.error(`${problem}\n${usage}`)
  process.exit(2)
}

/** Node's parseArgs, or the usage when the arguments are not the command's. */
export function parseOrExit<T>(usage: string, parse: () => T): T {
  try {
    return parse()
  } catch (error) {
    return exitWithUsage(usage, (error as Error).message)
  }
}
