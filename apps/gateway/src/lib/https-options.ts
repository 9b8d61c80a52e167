import { readFileSync } from 'node:fs'
import { createSecureContext } from 'node:tls'
import { ConfigError, type GatewayConfig } from '@iotflow/config'

/**
 * With TLS_CERT_FILE and TLS_KEY_FILE the gateway serves HTTPS only (no plain-text port beside it,
 * so an API key never crosses the network in clear). A key that does not match its certificate
 * stops the gateway at start, naming the variables.
 */
export function httpsOptionsFrom(config: Pick<GatewayConfig, 'TLS_CERT_FILE' | 'TLS_KEY_FILE'>) {
  if (config.TLS_CERT_FILE === undefined || config.TLS_KEY_FILE === undefined) return {}
  const https = { cert: readFileSync(config.TLS_CERT_FILE), key: readFileSync(config.TLS_KEY_FILE) }
  try {
    createSecureContext(https)
  } catch (error) {
    const message = `cannot serve TLS with TLS_CERT_FILE and TLS_KEY_FILE: ${(error as Error).message}`
    throw new ConfigError([{ variable: 'TLS_KEY_FILE', message }])
  }
  // Fastify's types tie `https` to an https.Server instance type; the gateway uses nothing of the
  // server that differs between the two.
  return { https } as object
}
