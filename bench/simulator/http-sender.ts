import { Agent, request } from 'node:http'

export interface SendOutcome {
  /** The HTTP status, or the error's code when there was no answer. */
  status: number | string
  /** Retry-After of a 503 or 429, in ms. */
  retryAfterMs?: number
}

/**
 * POSTs telemetry over kept-alive connections (node:http: far less CPU per request than fetch).
 * At most `connections` requests are on the wire; more wait for a free connection.
 */
export function createHttpSender(gatewayUrl: string, connections: number) {
  const url = new URL('/api/v1/telemetry', gatewayUrl)
  const agent = new Agent({ keepAlive: true, maxSockets: connections })
  return {
    send(apiKey: string, body: string): Promise<SendOutcome> {
      return new Promise((resolve) => {
        const req = request(
          url,
          {
            method: 'POST',
            agent,
            headers: {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(body),
              'x-api-key': apiKey,
            },
          },
          (res) => {
            res.resume()
            res.once('end', () => {
              const retryAfter = Number(res.headers['retry-after'])
              resolve({
                status: res.statusCode ?? 0,
                retryAfterMs: Number.isFinite(retryAfter) ? retryAfter * 1000 : undefined,
              })
            })
          },
        )
        req.setTimeout(30_000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })))
        req.once('error', (error: NodeJS.ErrnoException) => resolve({ status: error.code ?? 'ERROR' }))
        req.end(body)
      })
    },
    close: () => agent.destroy(),
  }
}
