import type { RedisTarget } from '@iotflow/config'
import { subscribeDeviceChanges } from '@iotflow/queue'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

export interface DeviceCacheSyncOptions {
  redisTarget: RedisTarget
  queuePrefix: string
}

/** Drops a device from this instance's key cache when any instance changes it (see device-events.ts). */
export default fp(
  async (fastify: FastifyInstance, options: DeviceCacheSyncOptions) => {
    const subscription = await subscribeDeviceChanges(
      options.redisTarget,
      options.queuePrefix,
      (deviceId) => fastify.apiKeyCache.forgetDevice(deviceId),
      (error) => fastify.log.warn({ err: error.message }, 'device change subscription error'),
    )
    fastify.addHook('onClose', () => subscription.close())
  },
  { name: 'device-cache-sync', dependencies: ['authentication'] },
)
