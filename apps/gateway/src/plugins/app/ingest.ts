import { createFieldTypesRepository } from '@iotflow/db'
import {
  createIngestService,
  type DeviceRateLimiter,
  deviceRateLimiterFrom,
  FieldTypeRegistry,
  type IngestService,
  telemetryLimitsFrom,
} from '@iotflow/ingest'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    ingestService: IngestService
    /** Shared by every ingest route, so each field's type is cached once. */
    fieldTypes: FieldTypeRegistry
    /** Shared by every ingest route: one bucket per device, whichever route it sends through. */
    deviceRateLimiter: DeviceRateLimiter
  }
}

export type IngestPluginOptions = Parameters<typeof telemetryLimitsFrom>[0] &
  Parameters<typeof deviceRateLimiterFrom>[1]

/** The shared ingest path (validation, field types, rate limits, atomic enqueue) as this app's decorator. */
export default fp(
  async (fastify: FastifyInstance, options: IngestPluginOptions) => {
    const fieldTypes = new FieldTypeRegistry(createFieldTypesRepository(fastify.sql))
    const rateLimiter = deviceRateLimiterFrom(fastify.redis, options)
    fastify.decorate('fieldTypes', fieldTypes)
    fastify.decorate('deviceRateLimiter', rateLimiter)
    fastify.decorate(
      'ingestService',
      createIngestService({
        fieldTypes,
        enqueuer: fastify.batchEnqueuer,
        limits: telemetryLimitsFrom(options),
        rateLimiter,
      }),
    )
  },
  { name: 'ingest', dependencies: ['postgres', 'queue'] },
)
