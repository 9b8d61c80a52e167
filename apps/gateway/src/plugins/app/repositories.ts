import {
  createDevicesRepository,
  createTelemetryQueryRepository,
  type DevicesRepository,
  type TelemetryQueryRepository,
} from '@iotflow/db'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    devicesRepository: DevicesRepository
    telemetryQueries: TelemetryQueryRepository
  }
}

export default fp(
  async (fastify: FastifyInstance) => {
    fastify.decorate('devicesRepository', createDevicesRepository(fastify.sql))
    fastify.decorate('telemetryQueries', createTelemetryQueryRepository(fastify.sql))
  },
  { name: 'repositories', dependencies: ['postgres'] },
)
