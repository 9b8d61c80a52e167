import { withDeadline } from '@iotflow/runtime'
import { takeRegisteredTracer } from './tracer.js'

/** The service names of API.md (Extensions, Operations); OTEL_SERVICE_NAME overrides them. */
export type IotflowServiceName =
  | 'iotflow-gateway'
  | 'iotflow-writer-postgres'
  | 'iotflow-writer-influx'
  | 'iotflow-mqtt-bridge'
  | 'iotflow-alert-evaluator'

export interface Tracing {
  enabled: boolean
  /** Exports the spans still buffered and stops the exporter; gives up after `deadlineMs`. */
  shutdown(deadlineMs?: number): Promise<void>
}

let enabled = false

/** Whether this process exports spans (startTracing found an OTLP endpoint). */
export function tracingEnabled(): boolean {
  return enabled
}

/**
 * Tracing is on only when an OTLP endpoint is named (OTEL_EXPORTER_OTLP_ENDPOINT or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and OTEL_SDK_DISABLED is not `true`.
 */
export function tracingWantedBy(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim())
}

/**
 * Called first by each app's main.ts. Off (no endpoint), it loads nothing, so @opentelemetry/api's
 * tracer stays a no-op; on, it imports the SDK (dynamically, so untraced processes never hold it) and
 * registers an OTLP exporter as the OTEL_* variables say. `env` decides on/off, the protocol and the
 * sampler; the exporter and span processor read process.env themselves.
 */
export async function startTracing(
  serviceName: IotflowServiceName,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Tracing> {
  if (!tracingWantedBy(env)) return { enabled: false, shutdown: async () => {} }
  const { startSdk } = await import('./sdk.js')
  const sdk = await startSdk(serviceName, env)
  takeRegisteredTracer()
  enabled = true
  return {
    enabled: true,
    async shutdown(deadlineMs = 5_000) {
      // An unreachable collector must not hold the process: spans not sent by then are dropped.
      await withDeadline(sdk.shutdown(), deadlineMs, 'trace export at shutdown').catch(() => {})
    },
  }
}
