import { accessSync, constants } from 'node:fs'
import { ConfigError } from './parse-env.js'

/**
 * Files that variables name (certificates, keys) must be readable at start: a wrong path stops the
 * app with a message naming the variable, instead of a TLS error on the first connection.
 */
export function requireReadableFiles<T extends object>(
  config: T,
  variables: readonly (keyof T & string)[],
): void {
  const problems: { variable: string; message: string }[] = []
  for (const variable of variables) {
    const path = config[variable]
    if (typeof path !== 'string') continue
    try {
      accessSync(path, constants.R_OK)
    } catch (error) {
      problems.push({ variable, message: `cannot read ${JSON.stringify(path)}: ${(error as Error).message}` })
    }
  }
  if (problems.length > 0) throw new ConfigError(problems)
}
