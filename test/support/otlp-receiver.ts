import { once } from 'node:events'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gunzipSync } from 'node:zlib'

type AnyValue = {
  stringValue?: string
  intValue?: string | number
  doubleValue?: number
  arrayValue?: { values?: AnyValue[] }
}
type KeyValue = { key: string; value: AnyValue }

/** One span as OTLP/JSON carries it, with its service's name. */
export interface ReceivedSpan {
  service: string
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  attributes: Record<string, unknown>
  links: { traceId: string; spanId: string; attributes: Record<string, unknown> }[]
}

/** One export request as it arrived. */
export interface ReceivedExport {
  contentType: string
  body: Buffer
}

/** An attribute's value: a string, a number, or an array of them (the device ids, partitions, …). */
const scalar = (value: AnyValue): unknown =>
  value.arrayValue
    ? (value.arrayValue.values ?? []).map(scalar)
    : (value.stringValue ??
      (value.intValue !== undefined ? Number(value.intValue) : (value.doubleValue ?? value)))

const attributesOf = (list: KeyValue[] | undefined) =>
  Object.fromEntries((list ?? []).map(({ key, value }) => [key, scalar(value)]))

async function bodyOf(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  const body = Buffer.concat(chunks)
  return request.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body
}

/**
 * An OTLP/HTTP receiver on 127.0.0.1 (a free port): collects every export POSTed to /v1/traces as
 * it came, and the spans of the JSON ones. What a collector would receive from the real exporter.
 */
export async function startOtlpReceiver() {
  const exports: ReceivedExport[] = []
  const spans: ReceivedSpan[] = []
  const server = createServer(async (request, response) => {
    const body = await bodyOf(request)
    if (request.method !== 'POST' || request.url !== '/v1/traces') {
      response.writeHead(404).end()
      return
    }
    const contentType = request.headers['content-type'] ?? ''
    exports.push({ contentType, body })
    if (contentType.startsWith('application/json')) {
      const { resourceSpans = [] } = JSON.parse(body.toString('utf8')) as {
        resourceSpans?: {
          resource?: { attributes?: KeyValue[] }
          scopeSpans?: {
            spans?: (Omit<ReceivedSpan, 'service' | 'attributes' | 'links'> & {
              attributes?: KeyValue[]
              links?: { traceId: string; spanId: string; attributes?: KeyValue[] }[]
            })[]
          }[]
        }[]
      }
      for (const resource of resourceSpans) {
        const service = String(attributesOf(resource.resource?.attributes)['service.name'])
        for (const scope of resource.scopeSpans ?? []) {
          for (const span of scope.spans ?? []) {
            spans.push({
              service,
              traceId: span.traceId,
              spanId: span.spanId,
              ...(span.parentSpanId ? { parentSpanId: span.parentSpanId } : {}),
              name: span.name,
              attributes: attributesOf(span.attributes),
              links: (span.links ?? []).map((link) => ({
                traceId: link.traceId,
                spanId: link.spanId,
                attributes: attributesOf(link.attributes),
              })),
            })
          }
        }
      }
    }
    response
      .writeHead(200, { 'content-type': contentType || 'application/json' })
      .end(contentType.startsWith('application/json') ? '{}' : '')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    exports,
    spans,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

export type OtlpReceiver = Awaited<ReturnType<typeof startOtlpReceiver>>
