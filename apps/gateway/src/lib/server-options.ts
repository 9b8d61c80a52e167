import { readFileSync } from 'node:fs'
import { createSecureContext } from 'node:tls'
import { ConfigError, type GatewayConfig } from '@iotflow/config'

/**
 * Node checks the headers and request timeouts of open connections at this interval (30 s by
 * default, which would let a 10 s timeout run to 40 s).
 */
const CONNECTIONS_CHECKING_INTERVAL_MS = 1_000

type ServerConfig = Pick<
  GatewayConfig,
  | 'TLS_CERT_FILE'
  | 'TLS_KEY_FILE'
  | 'HTTP_HEADERS_TIMEOUT_MS'
  | 'HTTP_REQUEST_TIMEOUT_MS'
  | 'HTTP_KEEP_ALIVE_TIMEOUT_MS'
>

/**
 * The gateway's server: timeouts that close slow or idle connections (a client trickling its headers
 * holds a socket until HTTP_HEADERS_TIMEOUT_MS, not forever), and with TLS_CERT_FILE and
 * TLS_KEY_FILE, HTTPS only: no plain-text port beside it, so an API key never crosses the network
 * in clear. A key that does not match its certificate stops the gateway at start.
 */
export function serverOptionsFrom(config: ServerConfig) {
  const server = {
    headersTimeout: config.HTTP_HEADERS_TIMEOUT_MS,
    requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
  }
  const timeouts = {
    requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeout: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
  }
  if (config.TLS_CERT_FILE === undefined || config.TLS_KEY_FILE === undefined)
    return { ...timeouts, http: server }

  const tls = { cert: readFileSync(config.TLS_CERT_FILE), key: readFileSync(config.TLS_KEY_FILE) }
  try {
    createSecureContext(tls)
  } catch (error) {
    const message = `cannot serve TLS with TLS_CERT_FILE and TLS_KEY_FILE: ${(error as Error).message}`
    throw new ConfigError([{ variable: 'TLS_KEY_FILE', message }])
  }
  // Fastify's types tie `https` to an https.Server instance type; the gateway uses nothing of the
  // server that differs between the two.
  return { ...timeouts, https: { ...tls, ...server } } as typeof timeouts
}
