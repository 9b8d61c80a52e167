import { createHash, timingSafeEqual } from 'node:crypto'
import { type DeviceIdentity, hashApiKey, sameKeyHash } from '@iotflow/db'
import { withDeadline } from '@iotflow/runtime'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ApiKeyCache } from '../../lib/api-key-cache.js'
import { httpError } from '../../lib/http-error.js'

declare module 'fastify' {
  interface FastifyInstance {
    requireAdmin: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** True when `token` is the admin token (constant-time comparison). */
    isAdminToken: (token: string) => boolean
    requireDevice: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** Admin token (Authorization) or device key (X-API-Key); sets `request.isAdmin` or `request.device`. */
    requireDeviceOrAdmin: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    apiKeyCache: ApiKeyCache
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

const NEGATIVE_CACHE_MS = 5_000
const KEY_LOOKUP_DEADLINE_MS = 2_000
// Admin: `Bearer <token>`, or the predecessor's `admin <token>`.
export const ADMIN_SCHEME = /^(?:bearer|admin)\s+(.+)$/i

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest()

export default fp(
  async (fastify: FastifyInstance, options: AuthenticationOptions) => {
    const adminTokenHash = digest(options.adminToken)
    const cache = new ApiKeyCache(options.apiKeyCacheTtlMs, NEGATIVE_CACHE_MS)
    fastify.decorate('apiKeyCache', cache)
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
      const hash = hashApiKey(key)
      let identity = cache.get(hash)
      if (identity === undefined) {
        const lookup = fastify.devicesRepository.findIdentityByKeyHash(hash).then((found) => {
          cache.set(hash, found ?? null)
          return found ?? null
        })
        try {
          // The client waits for a connection that Postgres may take long to give back: bounded.
          identity = await withDeadline(lookup, KEY_LOOKUP_DEADLINE_MS, 'API key lookup')
        } catch (error) {
          // Postgres unreachable: a device seen recently keeps sending (ingest needs only Redis);
          // an unknown one is told to come back, never answered with a 500.
          identity = cache.getStale(hash)
          request.log.warn(
            { err: (error as Error).message, stale: identity !== undefined },
            'key lookup failed',
          )
          if (!identity) {
            throw httpError(503, 'the device registry is unavailable; retry later', undefined, {
              'retry-after': '5',
            })
          }
        }
      }
      if (!identity || !sameKeyHash(identity.api_key_hash, hash)) throw httpError(401, 'unknown API key')
      if (identity.status !== 'active') throw httpError(403, 'this device is inactive')
      request.device = identity
      fastify.lastSeen.touch(identity.id)
      // Every later log line of this request, "request completed" included, names the device.
      request.log = request.log.child({ device_id: identity.id })
      reply.log = request.log
    }

    fastify.decorate('requireAdmin', requireAdmin)
    fastify.decorate('requireDevice', requireDevice)
    fastify.decorate('requireDeviceOrAdmin', (request: FastifyRequest, reply: FastifyReply) =>
      request.headers.authorization !== undefined ? requireAdmin(request) : requireDevice(request, reply),
    )
  },
  { name: 'authentication', dependencies: ['repositories', 'last-seen'] },
)
