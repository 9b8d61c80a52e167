import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import {
  type Device,
  DeviceCreateBody,
  DeviceCreated,
  DeviceEnvelope,
  DeviceIdParams,
  DeviceList,
  DeviceListQuery,
  DeviceRegistered,
  DeviceStatusEnvelope,
  DeviceUpdateBody,
} from '@iotflow/contracts'
import { DuplicateDeviceNameError } from '@iotflow/db'
import { publishDeviceChanged } from '@iotflow/queue'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { httpError } from '../lib/http-error.js'
import { createRegistrationLimit } from '../lib/registration-limit.js'

const ErrorRef = Type.Ref('ErrorResponse')
const adminOnly = [{ adminBearer: [] }]
const deviceOnly = [{ deviceApiKey: [] }]

export interface DevicesRoutesOptions {
  queuePrefix: string
  onlineWindowMs: number
  /** open: POST /api/v1/devices/register without the admin token, `registrationPerIp` per 5 minutes. */
  registrationMode: 'admin' | 'open'
  registrationPerIp: number
}

const devices: FastifyPluginAsyncTypebox<DevicesRoutesOptions> = async (fastify, options) => {
  const repo = fastify.devicesRepository
  const found = (device: Device | undefined, id: number) => {
    if (!device) throw httpError(404, `no device ${id}`)
    return device
  }
  const asConflict = (error: unknown): never => {
    if (error instanceof DuplicateDeviceNameError) throw httpError(409, error.message)
    throw error
  }
  /** Tells every gateway and bridge to forget the device's cached key. */
  const announce = (id: number) => publishDeviceChanged(fastify.redis, options.queuePrefix, id)
  /** Answers a change of device `id`, once every instance has been told of it. */
  const changed = async (id: number, change: Promise<Device | undefined>) => {
    const device = found(await change, id)
    await announce(id)
    return { device }
  }

  const createSchema = {
    tags: ['devices'],
    security: adminOnly,
    body: DeviceCreateBody,
    response: { 201: DeviceCreated, 400: ErrorRef, 401: ErrorRef, 403: ErrorRef, 409: ErrorRef },
  }
  const create = (request: { body: DeviceCreateBody }) => repo.create(request.body).catch(asConflict)
  fastify.post('/api/v1/devices', {
    schema: { ...createSchema, summary: 'Register a device; the API key is shown once' },
    onRequest: fastify.requireOperator,
    handler: async (request, reply) => {
      const { device, apiKey } = await create(request)
      return reply.code(201).send({ device, api_key: apiKey })
    },
  })

  const open = options.registrationMode === 'open'
  const registrationLimit = createRegistrationLimit(
    fastify.redis,
    options.queuePrefix,
    options.registrationPerIp,
  )
  // Open mode: a request with credentials is an operator's (the token must be right, no limit);
  // one without is a device registering itself, limited per client address.
  const mayRegister = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!open || request.headers.authorization !== undefined) return fastify.requireOperator(request, reply)
    await registrationLimit.admit(request)
  }
  fastify.post('/api/v1/devices/register', {
    schema: {
      ...createSchema,
      summary:
        'Register a device (predecessor alias of POST /api/v1/devices; the key also as device.api_key)',
      description: open
        ? `Open registration (REGISTRATION_MODE=open): without the admin token, ${options.registrationPerIp} per client address per 5 minutes, then 429 with Retry-After.`
        : 'Admin only (REGISTRATION_MODE=admin); REGISTRATION_MODE=open lets devices register themselves.',
      security: open ? [{}, ...adminOnly] : adminOnly,
      response: { ...createSchema.response, 201: DeviceRegistered, 429: ErrorRef, 503: ErrorRef },
    },
    onRequest: mayRegister,
    handler: async (request, reply) => {
      const { device, apiKey } = await create(request)
      return reply.code(201).send({ device: { ...device, api_key: apiKey }, api_key: apiKey })
    },
  })

  fastify.get(
    '/api/v1/devices',
    {
      onRequest: fastify.requireOperator,
      schema: {
        tags: ['devices'],
        summary: 'List devices, paged, filtered by status, type and a search in name, description, location',
        security: adminOnly,
        querystring: DeviceListQuery,
        response: { 200: DeviceList, 400: ErrorRef, 401: ErrorRef },
      },
    },
    async (request) => {
      const { devices, total } = await repo.list(request.query)
      const { page, per_page } = request.query
      return { devices, pagination: { page, per_page, total, pages: Math.ceil(total / per_page) } }
    },
  )

  fastify.get(
    '/api/v1/devices/status',
    {
      onRequest: fastify.requireDevice,
      schema: {
        tags: ['devices'],
        summary: 'The calling device, with last_seen and is_online',
        security: deviceOnly,
        response: { 200: DeviceStatusEnvelope, 401: ErrorRef, 403: ErrorRef },
      },
    },
    async (request) => {
      const id = request.device?.id as number
      const device = found(await repo.findById(id), id)
      const seen = Math.max(
        fastify.lastSeen.pending(id) ?? 0,
        device.last_seen ? Date.parse(device.last_seen) : 0,
      )
      return {
        device: {
          ...device,
          last_seen: seen ? new Date(seen).toISOString() : null,
          is_online: seen > 0 && Date.now() - seen <= options.onlineWindowMs,
        },
      }
    },
  )

  fastify.post(
    '/api/v1/devices/heartbeat',
    {
      onRequest: fastify.requireDevice, // authenticating the device is what records it as seen
      schema: {
        tags: ['devices'],
        summary: 'Record that the calling device is alive (updates last_seen)',
        security: deviceOnly,
        response: {
          200: Type.Object({ status: Type.Literal('ok'), last_seen: Type.String() }),
          401: ErrorRef,
          403: ErrorRef,
        },
      },
    },
    async (request) => ({
      status: 'ok' as const,
      last_seen: new Date(fastify.lastSeen.pending(request.device?.id as number) ?? Date.now()).toISOString(),
    }),
  )

  const byId = { tags: ['devices'], security: adminOnly, params: DeviceIdParams }
  fastify.get(
    '/api/v1/devices/:id',
    {
      onRequest: fastify.requireOperator,
      schema: {
        ...byId,
        summary: 'One device',
        response: { 200: DeviceEnvelope, 401: ErrorRef, 404: ErrorRef },
      },
    },
    async (request) => ({ device: found(await repo.findById(request.params.id), request.params.id) }),
  )

  fastify.patch(
    '/api/v1/devices/:id',
    {
      onRequest: fastify.requireOperator,
      schema: {
        ...byId,
        summary: 'Update a device (its status too: inactive devices are refused at once everywhere)',
        body: DeviceUpdateBody,
        response: {
          200: DeviceEnvelope,
          400: ErrorRef,
          401: ErrorRef,
          403: ErrorRef,
          404: ErrorRef,
          409: ErrorRef,
        },
      },
    },
    async (request) => {
      const device = found(
        await repo.update(request.params.id, request.body).catch(asConflict),
        request.params.id,
      )
      await announce(device.id)
      return { device }
    },
  )

  fastify.delete(
    '/api/v1/devices/:id',
    {
      onRequest: fastify.requireOperator,
      schema: {
        ...byId,
        summary: 'Deactivate a device and revoke its key; its stored telemetry stays',
        response: { 200: DeviceEnvelope, 401: ErrorRef, 403: ErrorRef, 404: ErrorRef },
      },
    },
    async (request) => changed(request.params.id, repo.deactivate(request.params.id)),
  )

  fastify.post(
    '/api/v1/devices/:id/rotate-key',
    {
      onRequest: fastify.requireOperator,
      schema: {
        ...byId,
        summary: 'Issue a new API key; the old one stops working at once',
        response: { 200: DeviceCreated, 401: ErrorRef, 403: ErrorRef, 404: ErrorRef },
      },
    },
    async (request) => {
      const rotated = await repo.rotateKey(request.params.id)
      if (!rotated) throw httpError(404, `no device ${request.params.id}`)
      await announce(rotated.device.id)
      return { device: rotated.device, api_key: rotated.apiKey }
    },
  )
}

export default devices
