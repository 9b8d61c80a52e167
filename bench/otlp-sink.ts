/**
 * A tiny OTLP/HTTP sink for measuring tracing's cost where no collector runs: accepts every POST to
 * /v1/traces (JSON or protobuf), answers 200 and counts exports and bytes; prints the counts when
 * stopped (SIGINT/SIGTERM).
 *
 *   node --import tsx bench/otlp-sink.ts [--port 4318]
 *   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_TRACES_SAMPLER=parentbased_traceidratio \
 *     OTEL_TRACES_SAMPLER_ARG=0.01 pnpm bench --scenarios 1 --seconds 30
 */
import { createServer } from 'node:http'
import { parseArgs } from 'node:util'

const { values } = parseArgs({ options: { port: { type: 'string', default: '4318' } } })
let exports = 0
let bytes = 0
const server = createServer((request, response) => {
  request.on('data', (chunk: Buffer) => {
    bytes += chunk.length
  })
  request.on('end', () => {
    if (request.method === 'POST' && request.url === '/v1/traces') exports++
    response.writeHead(request.url === '/v1/traces' ? 200 : 404).end()
  })
})
server.listen(Number(values.port), '127.0.0.1', () => {
  console.log(`otlp sink on http://127.0.0.1:${values.port}/v1/traces`)
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.log(JSON.stringify({ exports, bytes }))
    server.close()
    server.closeAllConnections()
  })
}
