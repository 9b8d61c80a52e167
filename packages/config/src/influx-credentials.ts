import type { InfluxEnvConfig } from './fragments.js'
import { ConfigError, requireTogether } from './parse-env.js'

/** What the schema cannot say alone: v2 needs a token; a v1 username goes with a password. */
export function checkInfluxCredentials<T extends InfluxEnvConfig>(config: T): T {
  if (config.INFLUX_API === 'v2' && !config.INFLUX_TOKEN) {
    throw new ConfigError([{ variable: 'INFLUX_TOKEN', message: 'required when INFLUX_API=v2, got unset' }])
  }
  requireTogether(config, 'INFLUX_USERNAME', 'INFLUX_PASSWORD')
  return config
}
