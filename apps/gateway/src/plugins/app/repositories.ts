import { createDevicesRepository, type DevicesRepository } from '@iotflow/db'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    devicesRepository: DevicesRepository
  }
}

export default fp(
  async (fastify: FastifyInstance) => {
    fastify.decorate('devicesRepository', createDevicesRepository(fastify.sql))
  },
  { name: 'repositories', dependencies: ['postgres'] },
)
