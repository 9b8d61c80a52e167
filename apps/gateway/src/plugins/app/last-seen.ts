import { LastSeenTracker } from '@iotflow/db'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    lastSeen: LastSeenTracker
  }
}

export interface LastSeenOptions {
  flushIntervalMs: number
}

/** Flushes devices' `last_seen` every few seconds, and once more on close. */
export default fp(
  async (fastify: FastifyInstance, options: LastSeenOptions) => {
    const tracker = new LastSeenTracker((seen) => fastify.devicesRepository.touchLastSeen(seen))
    const flush = () =>
      tracker
        .flush()
        .catch((error: Error) => fastify.log.warn({ err: error.message }, 'last_seen flush failed'))
    const timer = setInterval(flush, options.flushIntervalMs)
    fastify.decorate('lastSeen', tracker)
    fastify.addHook('onClose', async () => {
      clearInterval(timer)
      await flush()
    })
  },
  { name: 'last-seen', dependencies: ['repositories'] },
)
