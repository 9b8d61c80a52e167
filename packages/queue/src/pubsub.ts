import type { RedisTarget } from '@iotflow/config'
import { createRedisConnection } from './connection.js'

export interface ChannelSubscription {
  close(): Promise<void>
}

/**
 * Hears every message published on `channel`. A subscribed connection can do nothing else, so it
 * is its own; ioredis resubscribes it on reconnect.
 */
export async function subscribeChannel(
  redisTarget: RedisTarget,
  channel: string,
  onMessage: (message: string) => void,
  onError: (error: Error) => void,
): Promise<ChannelSubscription> {
  const subscriber = createRedisConnection(redisTarget, 'worker')
  subscriber.on('error', onError)
  subscriber.on('message', (_channel: string, message: string) => onMessage(message))
  await subscriber.subscribe(channel)
  return {
    close: () =>
      subscriber.quit().then(
        () => undefined,
        () => subscriber.disconnect(),
      ),
  }
}
