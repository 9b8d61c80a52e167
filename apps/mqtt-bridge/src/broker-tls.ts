import { readFileSync } from 'node:fs'
import type { MqttBridgeConfig } from '@iotflow/config'
import type { BrokerTls } from './broker-connection.js'

/**
 * The PEM files of MQTT_CA_FILE, MQTT_CERT_FILE and MQTT_KEY_FILE, read once for every connection.
 * Without MQTT_CA_FILE, an mqtts:// broker is checked against the system's CAs.
 */
export function brokerTlsFrom(
  config: Pick<MqttBridgeConfig, 'MQTT_CA_FILE' | 'MQTT_CERT_FILE' | 'MQTT_KEY_FILE'>,
): BrokerTls | undefined {
  if (config.MQTT_CA_FILE === undefined && config.MQTT_CERT_FILE === undefined) return undefined
  const read = (path: string | undefined) => (path === undefined ? undefined : readFileSync(path))
  return { ca: read(config.MQTT_CA_FILE), cert: read(config.MQTT_CERT_FILE), key: read(config.MQTT_KEY_FILE) }
}
