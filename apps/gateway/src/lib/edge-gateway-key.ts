import { type EdgeGatewayIdentity, hashApiKey, sameKeyHash } from '@iotflow/db'
import type { FastifyInstance } from 'fastify'
import { httpError } from './http-error.js'

/**
 * The active edge gateway a key belongs to (compared in constant time), or a 401/403. Looked up per
 * request: a gateway's request carries many points, and its device list may have just changed.
 */
export async function edgeGatewayByKey(fastify: FastifyInstance, key: string): Promise<EdgeGatewayIdentity> {
  const hash = hashApiKey(key)
  const gateway = await fastify.edgeGatewaysRepository.findIdentityByKeyHash(hash)
  if (!gateway || !sameKeyHash(gateway.api_key_hash, hash)) throw httpError(401, 'unknown edge gateway key')
  if (gateway.status !== 'active') throw httpError(403, 'this edge gateway is inactive')
  return gateway
}
