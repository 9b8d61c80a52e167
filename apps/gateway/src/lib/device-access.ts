import type { FastifyRequest } from 'fastify'
import { httpError } from './http-error.js'

/** Admin reads any device; a device only itself, whatever id the path names. */
export function assertCanAccessDevice(request: FastifyRequest, deviceId: number): void {
  if (request.operator) return
  if (request.device?.id !== deviceId) throw httpError(403, 'a device may only access its own data')
}
