import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { DependencyState } from './probe.js'

export interface HealthServer {
  port: number
  close(): Promise<void>
}

/**
 * What /health/ready shows: each dependency, which decides readiness, and details that do not
 * (queue depths, the backlog), shown as they are, as the gateway's /health/ready does.
 */
export type ReadinessReport = {
  dependencies: Record<string, DependencyState>
  [detail: string]: unknown
}

export type ReadinessCheck = () => Promise<ReadinessReport>

/** Serves GET /metrics: the body in Prometheus text format and its content type. */
export type MetricsExposition = () => Promise<{ contentType: string; body: string }>

/**
 * A worker's HTTP face: GET /health answers while the process lives, GET /health/ready checks its
 * dependencies and answers 503 when one is down, GET /metrics (when given) is for Prometheus.
 */
export async function startHealthServer(
  host: string,
  port: number,
  ready: ReadinessCheck,
  metrics?: MetricsExposition,
): Promise<HealthServer> {
  const server: Server = createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/health') return send(res, 200, { status: 'healthy' })
    if (path === '/health/ready') {
      const { dependencies, ...details } = await ready()
      const up = Object.values(dependencies).every((d) => d.status === 'up')
      return send(res, up ? 200 : 503, { status: up ? 'ready' : 'degraded', dependencies, ...details })
    }
    if (path === '/metrics' && metrics) {
      const { contentType, body } = await metrics()
      res.writeHead(200, { 'content-type': contentType })
      return res.end(body)
    }
    send(res, 404, { statusCode: 404, error: 'Not Found', message: `no route ${path}` })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

function send(res: import('node:http').ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}
