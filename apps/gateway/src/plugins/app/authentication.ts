import { createHash, timingSafeEqual } from 'node:crypto'
import {
  createDeviceAuthenticator,
  type DeviceIdentity,
  type DeviceIdentityCache,
  DeviceRegistryUnavailableError,
} from '@iotflow/db'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { httpError } from '../../lib/http-error.js'

declare module 'fastify' {
  interface FastifyInstance {
    requireAdmin: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** True when `token` is the admin token (constant-time comparison). */
    isAdminToken: (token: string) => boolean
    requireDevice: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** Sets `request.device` from a device key found elsewhere than X-API-Key (line protocol's credentials). */
    authenticateDevice: (request: FastifyRequest, reply: FastifyReply, key: string) => Promise<void>
    /** Admin token (Authorization) or device key (X-API-Key); sets `request.isAdmin` or `request.device`. */
    requireDeviceOrAdmin: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    apiKeyCache: DeviceIdentityCache
  }
  interface FastifyRequest {
    device: DeviceIdentity | null
    isAdmin: boolean
  }
}

export interface AuthenticationOptions {
  adminToken: string
  apiKeyCacheTtlMs: number
}

// Admin: `Bearer <token>`, or the predecessor's `admin <token>`.
export const ADMIN_SCHEME = /^(?:bearer|admin)\s+(.+)$/i

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest()

export default fp(
  async (fastify: FastifyInstance, options: AuthenticationOptions) => {
    const adminTokenHash = digest(options.adminToken)
    const authenticator = createDeviceAuthenticator({
      devices: fastify.devicesRepository,
      ttlMs: options.apiKeyCacheTtlMs,
    })
    fastify.decorate('apiKeyCache', authenticator.cache)
    fastify.decorateRequest('device', null)
    fastify.decorateRequest('isAdmin', false)

    // Both sides hashed to equal length, then compared in constant time.
    const isAdminToken = (token: string) => timingSafeEqual(digest(token), adminTokenHash)
    fastify.decorate('isAdminToken', isAdminToken)

    async function requireAdmin(request: FastifyRequest) {
      const match = ADMIN_SCHEME.exec(request.headers.authorization ?? '')
      if (!match?.[1] || !isAdminToken(match[1])) {
        throw httpError(401, 'an admin token is required: Authorization: Bearer <ADMIN_TOKEN>')
      }
      request.isAdmin = true
    }

    async function requireDevice(request: FastifyRequest, reply: FastifyReply) {
      const key = request.headers['x-api-key']
      if (typeof key !== 'string' || key.length === 0) {
        throw httpError(401, 'a device API key is required in the X-API-Key header')
      }
      await authenticateDevice(request, reply, key)
    }

    async function authenticateDevice(request: FastifyRequest, reply: FastifyReply, key: string) {
      const authentication = await authenticator.byApiKey(key).catch((error: unknown) => {
        if (!(error instanceof DeviceRegistryUnavailableError)) throw error
        request.log.warn({ err: (error.cause as Error)?.message }, 'key lookup failed')
        throw httpError(503, 'the device registry is unavailable; retry later', undefined, {
          'retry-after': '5',
        })
      })
      if (!authentication.ok) throw httpError(authentication.status, authentication.message)
      const device = authentication.device
      request.device = device
      fastify.lastSeen.touch(device.id)
      // Every later log line of this request, "request completed" included, names the device.
      request.log = request.log.child({ device_id: device.id })
      reply.log = request.log
    }

    fastify.decorate('requireAdmin', requireAdmin)
    fastify.decorate('requireDevice', requireDevice)
    fastify.decorate('authenticateDevice', authenticateDevice)
    fastify.decorate('requireDeviceOrAdmin', (request: FastifyRequest, reply: FastifyReply) =>
      request.headers.authorization !== undefined ? requireAdmin(request) : requireDevice(request, reply),
    )
  },
  { name: 'authentication', dependencies: ['repositories', 'last-seen'] },
)
