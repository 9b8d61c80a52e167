import { createTokenBuckets, type RedisConnection } from '@iotflow/queue'
import type { FastifyRequest } from 'fastify'
import { httpError } from './http-error.js'

const WINDOW_SECONDS = 300

/**
 * Open registration's limit: `perWindow` registrations per client address per 5 minutes, a token
 * bucket in Redis so that every gateway counts together (it refills one registration each
 * 5 min / perWindow). Past it, 429 with Retry-After; Redis unreachable, 503.
 */
export function createRegistrationLimit(redis: RedisConnection, queuePrefix: string, perWindow: number) {
  const buckets = createTokenBuckets(redis, queuePrefix, 'registration')
  return {
    async admit(request: FastifyRequest): Promise<void> {
      const taken = await buckets
        .take([{ name: request.ip, perSecond: perWindow / WINDOW_SECONDS, burst: perWindow, cost: 1 }])
        .catch((error: Error) => {
          request.log.warn({ err: error.message }, 'registration limit unavailable')
          throw httpError(503, 'registration is unavailable; retry later', undefined, { 'retry-after': '5' })
        })
      if (taken.ok) return
      const retryAfter = Math.max(1, Math.ceil(taken.retryAfterMs / 1000))
      throw httpError(
        429,
        `at most ${perWindow} registrations per client address per 5 minutes; retry in ${retryAfter} s`,
        undefined,
        { 'retry-after': String(retryAfter) },
      )
    },
  }
}
