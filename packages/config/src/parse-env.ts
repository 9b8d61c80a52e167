import type { Static, TObject, TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'

/** Raised when the environment does not satisfy an app's schema; the message names every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.message}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

/**
 * Reads the variables named by `schema` from `env`, applies defaults, converts strings to the
 * declared types and validates. Empty strings count as unset, so `FOO=` falls back to the default.
 */
export function parseEnv<T extends TObject>(schema: T, env: NodeJS.ProcessEnv = process.env): Static<T> {
  const raw: Record<string, string> = {}
  for (const key of Object.keys(schema.properties)) {
    const value = env[key]
    if (value !== undefined && value !== '') raw[key] = value
  }
  const describe = (variable: string, message: string, description: unknown) => {
    const given = env[variable]
    const shown = given === undefined || given === '' ? 'unset' : JSON.stringify(given)
    const hint = description ? ` (${description})` : ''
    return { variable, message: `${message}, got ${shown}${hint}` }
  }
  // Convert would truncate "1.5" to 1 for an integer: refuse it instead of guessing.
  const notIntegers = Object.entries(raw)
    .map(([key, value]) => [key, value, (schema.properties as Record<string, TSchema>)[key]] as const)
    .filter(([, value, property]) => property?.type === 'integer' && !/^[+-]?\d+$/.test(value.trim()))
    .map(([key, , property]) => describe(key, 'Expected integer', property?.description))
  // Value.Default and Value.Convert fill and convert in place: give them a copy.
  const converted = Value.Convert(schema, Value.Default(schema, { ...raw }))
  const problems = [
    ...notIntegers,
    ...[...Value.Errors(schema, converted)].map((error) =>
      describe(
        error.path.replace(/^\//, '').split('/')[0] || '(environment)',
        error.message,
        error.schema.description,
      ),
    ),
  ]
  if (problems.length > 0) throw new ConfigError(dedupeByVariable(problems))
  return converted as Static<T>
}

function dedupeByVariable(problems: { variable: string; message: string }[]) {
  const seen = new Map<string, { variable: string; message: string }>()
  for (const problem of problems) if (!seen.has(problem.variable)) seen.set(problem.variable, problem)
  return [...seen.values()]
}

/** For an app's main: load the config, or print what is wrong and exit 1 (no stack trace). */
export function loadConfigOrExit<T>(load: () => T): T {
  try {
    return load()
  } catch (error) {
    console.error(error instanceof ConfigError ? error.message : error)
    process.exit(1)
  }
}

/** Two optional variables that mean nothing apart (a username and its password): both or neither. */
export function requireTogether<T extends Record<string, unknown>>(
  config: T,
  first: keyof T & string,
  second: keyof T & string,
): void {
  if ((config[first] === undefined) === (config[second] === undefined)) return
  const missing = config[first] === undefined ? first : second
  throw new ConfigError([{ variable: missing, message: `${first} and ${second} go together, got unset` }])
}
