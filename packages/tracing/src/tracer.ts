import { trace } from '@opentelemetry/api'

/** IoTFlow's spans; a no-op until startTracing registers a provider. */
export const tracer = trace.getTracer('iotflow')

/** The attribute names IoTFlow's spans and links carry (docs/operations.md, Traces). */
export const spanAttributes = {
  deviceId: 'iotflow.device.id',
  deviceIds: 'iotflow.device.ids',
  batchId: 'iotflow.batch.id',
  batchIds: 'iotflow.batch.ids',
  points: 'iotflow.points',
  jobs: 'iotflow.jobs',
  queue: 'iotflow.queue',
} as const
