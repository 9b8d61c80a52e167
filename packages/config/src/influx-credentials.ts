import type { InfluxEnvConfig } from './fragments.js'
import { ConfigError } from './parse-env.js'

/** What the schema cannot say alone: v2 needs a token; a v1 username goes with a password. */
export function checkInfluxCredentials<T extends InfluxEnvConfig>(config: T): T {
  if (config.INFLUX_API === 'v2' && !config.INFLUX_TOKEN) {
    throw new ConfigError([{ variable: 'INFLUX_TOKEN', message: 'required when INFLUX_API=v2, got unset' }])
  }
  if ((config.INFLUX_USERNAME === undefined) !== (config.INFLUX_PASSWORD === undefined)) {
    const missing = config.INFLUX_USERNAME === undefined ? 'INFLUX_USERNAME' : 'INFLUX_PASSWORD'
    throw new ConfigError([
      { variable: missing, message: 'INFLUX_USERNAME and INFLUX_PASSWORD go together, got unset' },
    ])
  }
  return config
}
