import type { SpanExporter } from '@opentelemetry/sdk-trace-node'
import { samplerFrom } from './sampler.js'

/** OTLP/HTTP encodings the exporters support; gRPC is not offered. */
const protocols = ['http/protobuf', 'http/json'] as const
type Protocol = (typeof protocols)[number]

function protocolFrom(env: NodeJS.ProcessEnv): Protocol {
  const name = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL
    ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'
    : 'OTEL_EXPORTER_OTLP_PROTOCOL'
  const value = (env[name]?.trim() || 'http/protobuf') as Protocol
  if (!protocols.includes(value)) {
    throw new Error(`${name}=${value} is not supported; use ${protocols.join(' or ')}`)
  }
  return value
}

/**
 * The OpenTelemetry SDK, loaded only here and only by dynamic imports: the app bundles keep every
 * third-party import as an import, so a static one would load the SDK in untraced processes too.
 * The exporters and the batch span processor read their own OTEL_* variables (endpoint, headers,
 * timeout, OTEL_BSP_*).
 */
export async function startSdk(serviceName: string, env: NodeJS.ProcessEnv) {
  const protocol = protocolFrom(env)
  const [node, resources] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/resources'),
  ])
  const exporter: SpanExporter =
    protocol === 'http/json'
      ? new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter()
      : new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter()
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the env detector) win over the app's own name.
  const resource = resources
    .defaultResource()
    .merge(resources.resourceFromAttributes({ 'service.name': serviceName }))
    .merge(resources.detectResources({ detectors: [resources.envDetector] }))
  const provider = new node.NodeTracerProvider({
    resource,
    sampler: samplerFrom(node, env),
    spanProcessors: [new node.BatchSpanProcessor(exporter)],
  })
  provider.register()
  return { shutdown: () => provider.shutdown() }
}
