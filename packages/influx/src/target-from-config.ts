import type { InfluxEnvConfig } from '@iotflow/config'
import type { InfluxTarget } from './write-client.js'

/** Which InfluxDB API to speak, from config: v2 (2.x, production) or v1 /write (1.x). */
export function influxTargetFrom(config: InfluxEnvConfig): InfluxTarget {
  const base = { url: config.INFLUX_URL, timeoutMs: config.INFLUX_TIMEOUT_MS }
  if (config.INFLUX_API === 'v2') {
    return {
      api: 'v2',
      ...base,
      token: config.INFLUX_TOKEN ?? '',
      org: config.INFLUX_ORG,
      bucket: config.INFLUX_BUCKET,
    }
  }
  return {
    api: 'v1',
    ...base,
    database: config.INFLUX_DATABASE,
    ...(config.INFLUX_RETENTION_POLICY && { retentionPolicy: config.INFLUX_RETENTION_POLICY }),
    ...(config.INFLUX_USERNAME && { username: config.INFLUX_USERNAME }),
    ...(config.INFLUX_PASSWORD && { password: config.INFLUX_PASSWORD }),
  }
}
