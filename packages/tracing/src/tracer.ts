import { type Tracer, trace } from '@opentelemetry/api'

let current: Tracer = trace.getTracer('iotflow')

/**
 * IoTFlow's tracer: a no-op until startTracing registers a provider. Taken again after the
 * registration because the SDK (CommonJS) registers through its own copy of @opentelemetry/api: a
 * tracer this (ESM) copy handed out before would stay a no-op.
 */
export function tracer(): Tracer {
  return current
}

/** Called by startTracing once the provider is registered. */
export function takeRegisteredTracer(): void {
  current = trace.getTracer('iotflow')
}

/** The attribute names IoTFlow's spans and links carry (docs/operations.md, Traces). */
export const spanAttributes = {
  deviceId: 'iotflow.device.id',
  deviceIds: 'iotflow.device.ids',
  batchId: 'iotflow.batch.id',
  batchIds: 'iotflow.batch.ids',
  points: 'iotflow.points',
  jobs: 'iotflow.jobs',
  queue: 'iotflow.queue',
  /** The day partitions of PostgreSQL's telemetry table a store call writes. */
  partitions: 'iotflow.partitions',
} as const
