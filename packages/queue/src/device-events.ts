import type { RedisTarget } from '@iotflow/config'
import { bullPrefix } from './catalog.js'
import type { RedisConnection } from './connection.js'
import { type ChannelSubscription, subscribeChannel } from './pubsub.js'

/**
 * "This device's credentials or status changed": published by the instance that changed it, heard
 * by every gateway and bridge, which drop the device from their key caches. This is what makes a
 * revoked key stop working everywhere within a second instead of after the cache TTL.
 */
const channelOf = (queuePrefix: string) => `${bullPrefix(queuePrefix)}:device-changed`

export async function publishDeviceChanged(
  redis: RedisConnection,
  queuePrefix: string,
  deviceId: number,
): Promise<void> {
  await redis.publish(channelOf(queuePrefix), String(deviceId))
}

export type DeviceChangeSubscription = ChannelSubscription

export function subscribeDeviceChanges(
  redisTarget: RedisTarget,
  queuePrefix: string,
  onChange: (deviceId: number) => void,
  onError: (error: Error) => void,
): Promise<DeviceChangeSubscription> {
  return subscribeChannel(
    redisTarget,
    channelOf(queuePrefix),
    (message) => {
      const deviceId = Number(message)
      if (Number.isInteger(deviceId)) onChange(deviceId)
    },
    onError,
  )
}
