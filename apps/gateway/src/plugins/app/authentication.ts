import { createHash, timingSafeEqual } from 'node:crypto'
import { createDeviceAuthenticator, type DeviceIdentity, type DeviceIdentityCache } from '@iotflow/db'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { httpError } from '../../lib/http-error.js'

declare module 'fastify' {
  interface FastifyInstance {
    requireAdmin: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    requireDevice: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    apiKeyCache: DeviceIdentityCache
  }
  interface FastifyRequest {
    device: DeviceIdentity | null
  }
}

export interface AuthenticationOptions {
  adminToken: string
  apiKeyCacheTtlMs: number
}

// Admin: `Bearer <token>`, or the predecessor's `admin <token>`.
const ADMIN_SCHEME = /^(?:bearer|admin)\s+(.+)$/i

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

    fastify.decorate('requireAdmin', async (request: FastifyRequest) => {
      const match = ADMIN_SCHEME.exec(request.headers.authorization ?? '')
      // Both sides hashed to equal length, then compared in constant time.
      if (!match?.[1] || !timingSafeEqual(digest(match[1]), adminTokenHash)) {
        throw httpError(401, 'an admin token is required: Authorization: Bearer <ADMIN_TOKEN>')
      }
    })

    fastify.decorate('requireDevice', async (request: FastifyRequest) => {
      const key = request.headers['x-api-key']
      if (typeof key !== 'string' || key.length === 0) {
        throw httpError(401, 'a device API key is required in the X-API-Key header')
      }
      const authentication = await authenticator.byApiKey(key)
      if (!authentication.ok) throw httpError(authentication.status, authentication.message)
      request.device = authentication.device
    })
  },
  { name: 'authentication', dependencies: ['repositories'] },
)
