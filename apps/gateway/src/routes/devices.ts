import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import { DeviceCreateBody, DeviceCreated } from '@iotflow/contracts'
import { DuplicateDeviceNameError } from '@iotflow/db'
import { httpError } from '../lib/http-error.js'

const ErrorRef = Type.Ref('ErrorResponse')

const devices: FastifyPluginAsyncTypebox = async (fastify) => {
  const schema = {
    tags: ['devices'],
    security: [{ adminBearer: [] }],
    body: DeviceCreateBody,
    response: { 201: DeviceCreated, 400: ErrorRef, 401: ErrorRef, 409: ErrorRef },
  }

  const routeOptions = {
    onRequest: fastify.requireAdmin,
    handler: async (request: { body: DeviceCreateBody }, reply: { code(status: number): unknown }) => {
      try {
        const { device, apiKey } = await fastify.devicesRepository.create(request.body)
        reply.code(201)
        return { device, api_key: apiKey }
      } catch (error) {
        if (error instanceof DuplicateDeviceNameError) throw httpError(409, error.message)
        throw error
      }
    },
  }

  fastify.post('/api/v1/devices', {
    schema: { ...schema, summary: 'Register a device; the API key is shown once' },
    ...routeOptions,
  })
  fastify.post('/api/v1/devices/register', {
    schema: { ...schema, summary: 'Register a device (predecessor alias of POST /api/v1/devices)' },
    ...routeOptions,
  })
}

export default devices
