import { createFieldTypesRepository } from '@iotflow/db'
import {
  createIngestService,
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
  }
}

export type IngestPluginOptions = Parameters<typeof telemetryLimitsFrom>[0]

/** The shared ingest path (validation, field types, atomic enqueue) as this app's decorator. */
export default fp(
  async (fastify: FastifyInstance, options: IngestPluginOptions) => {
    const fieldTypes = new FieldTypeRegistry(createFieldTypesRepository(fastify.sql))
    fastify.decorate('fieldTypes', fieldTypes)
    fastify.decorate(
      'ingestService',
      createIngestService({
        fieldTypes,
        enqueuer: fastify.batchEnqueuer,
        limits: telemetryLimitsFrom(options),
      }),
    )
  },
  { name: 'ingest', dependencies: ['postgres', 'queue'] },
)
