import type { Registry } from 'prom-client'

export interface Exposition {
  contentType: string
  body: string
}

/** The registry in Prometheus text format, ready to serve as GET /metrics. */
export async function exposition(registry: Registry): Promise<Exposition> {
  return { contentType: registry.contentType, body: await registry.metrics() }
}
