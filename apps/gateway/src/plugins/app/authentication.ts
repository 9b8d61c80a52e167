import { createHash, timingSafeEqual } from 'node:crypto'
import {
  createDeviceAuthenticator,
  type DeviceIdentity,
  type DeviceIdentityCache,
  DeviceRegistryUnavailableError,
  OPERATOR_TOKEN_PREFIX,
  type OperatorRole,
} from '@iotflow/db'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { httpError } from '../../lib/http-error.js'

/** Who made an operator request: ADMIN_TOKEN (tokenId null) or an operator token. */
export interface Operator {
  tokenId: number | null
  name: string
  role: OperatorRole
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * An operator credential in Authorization: ADMIN_TOKEN or an operator token. A `read` token
     * may only read (GET, HEAD): a change gets 403. Sets `request.operator`.
     */
    requireOperator: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** An operator credential with the `admin` role, whatever the method (tokens, audit log). */
    requireAdminRole: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** The operator a bearer secret belongs to (ADMIN_TOKEN compared in constant time), if any. */
    operatorOf: (secret: string) => Promise<Operator | undefined>
    requireDevice: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    /** Sets `request.device` from a device key found elsewhere than X-API-Key (line protocol's credentials). */
    authenticateDevice: (request: FastifyRequest, reply: FastifyReply, key: string) => Promise<void>
    /** Operator credential (Authorization) or device key (X-API-Key); sets `request.operator` or `request.device`. */
    requireDeviceOrOperator: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
    apiKeyCache: DeviceIdentityCache
  }
  interface FastifyRequest {
    device: DeviceIdentity | null
    operator: Operator | null
  }
}

export interface AuthenticationOptions {
  adminToken: string
  apiKeyCacheTtlMs: number
}

// Operators: `Bearer <token>`, or the predecessor's `admin <token>`.
export const ADMIN_SCHEME = /^(?:bearer|admin)\s+(.+)$/i
const READ_METHODS = new Set(['GET', 'HEAD'])
/** A request that may change something: all a `read` token may not do, and what the audit log keeps. */
export const isChange = (method: string) => !READ_METHODS.has(method)

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
    fastify.decorateRequest('operator', null)

    const adminTokenOperator: Operator = { tokenId: null, name: 'ADMIN_TOKEN', role: 'admin' }
    async function operatorOf(secret: string): Promise<Operator | undefined> {
      // Both sides hashed to equal length, then compared in constant time.
      if (timingSafeEqual(digest(secret), adminTokenHash)) return adminTokenOperator
      if (!secret.startsWith(OPERATOR_TOKEN_PREFIX)) return undefined
      const token = await fastify.operatorTokensRepository.bySecret(secret).catch((error: unknown) => {
        fastify.log.warn({ err: (error as Error).message }, 'operator token lookup failed')
        throw httpError(503, 'the operator token registry is unavailable; retry later', undefined, {
          'retry-after': '5',
        })
      })
      return token && { tokenId: token.id, name: token.name, role: token.role }
    }
    fastify.decorate('operatorOf', operatorOf)

    async function authenticateOperator(request: FastifyRequest): Promise<Operator> {
      const match = ADMIN_SCHEME.exec(request.headers.authorization ?? '')
      const operator = match?.[1] ? await operatorOf(match[1]) : undefined
      if (!operator) {
        throw httpError(
          401,
          'an operator token is required: Authorization: Bearer <ADMIN_TOKEN or operator token>',
        )
      }
      request.operator = operator
      return operator
    }

    async function requireOperator(request: FastifyRequest) {
      const operator = await authenticateOperator(request)
      if (operator.role !== 'admin' && isChange(request.method)) {
        throw httpError(403, `token "${operator.name}" has the read role: it cannot change anything`)
      }
    }

    async function requireAdminRole(request: FastifyRequest) {
      const operator = await authenticateOperator(request)
      if (operator.role !== 'admin')
        throw httpError(403, `token "${operator.name}" has the read role; this needs admin`)
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

    fastify.decorate('requireOperator', requireOperator)
    fastify.decorate('requireAdminRole', requireAdminRole)
    fastify.decorate('requireDevice', requireDevice)
    fastify.decorate('authenticateDevice', authenticateDevice)
    fastify.decorate('requireDeviceOrOperator', (request: FastifyRequest, reply: FastifyReply) =>
      request.headers.authorization !== undefined ? requireOperator(request) : requireDevice(request, reply),
    )
  },
  { name: 'authentication', dependencies: ['repositories', 'last-seen'] },
)
