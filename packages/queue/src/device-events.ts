import type { Redis } from 'ioredis'
import { bullPrefix } from './catalog.js'
import { createRedisConnection } from './connection.js'

/**
 * "This device's credentials or status changed": published by the instance that changed it, heard
 * by every gateway and bridge, which drop the device from their key caches. This is what makes a
 * revoked key stop working everywhere within a second instead of after the cache TTL.
 */
const channelOf = (queuePrefix: string) => `${bullPrefix(queuePrefix)}:device-changed`

export async function publishDeviceChanged(
  redis: Redis,
  queuePrefix: string,
  deviceId: number,
): Promise<void> {
  await redis.publish(channelOf(queuePrefix), String(deviceId))
}

export interface DeviceChangeSubscription {
  close(): Promise<void>
}

export async function subscribeDeviceChanges(
  redisUrl: string,
  queuePrefix: string,
  onChange: (deviceId: number) => void,
  onError: (error: Error) => void,
): Promise<DeviceChangeSubscription> {
  // A subscribed connection can do nothing else, so it is its own. It resubscribes on reconnect.
  const subscriber = createRedisConnection(redisUrl, 'worker')
  subscriber.on('error', onError)
  subscriber.on('message', (_channel: string, message: string) => {
    const deviceId = Number(message)
    if (Number.isInteger(deviceId)) onChange(deviceId)
  })
  await subscriber.subscribe(channelOf(queuePrefix))
  return {
    close: () =>
      subscriber.quit().then(
        () => undefined,
        () => subscriber.disconnect(),
      ),
  }
}
