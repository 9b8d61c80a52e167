import type { RedisTarget } from '@iotflow/config'
import { coalescedRun } from '@iotflow/runtime'
import { bullPrefix } from './catalog.js'
import type { RedisConnection } from './connection.js'
import { type ChannelSubscription, subscribeChannel } from './pubsub.js'

/**
 * "The alert rules changed": published by the gateway that changed one, heard by every producer
 * (whether to fan out to the alert queue at all) and every evaluator (which reloads its rules).
 */
const channelOf = (queuePrefix: string) => `${bullPrefix(queuePrefix)}:alert-rules-changed`

export async function publishAlertRulesChanged(redis: RedisConnection, queuePrefix: string): Promise<void> {
  await redis.publish(channelOf(queuePrefix), '1')
}

export function subscribeAlertRuleChanges(
  redisTarget: RedisTarget,
  queuePrefix: string,
  onChange: () => void,
  onError: (error: Error) => void,
): Promise<ChannelSubscription> {
  return subscribeChannel(redisTarget, channelOf(queuePrefix), onChange, onError)
}

export interface AlertRuleWatchOptions<T> {
  redisTarget: RedisTarget
  queuePrefix: string
  /** Reads what is watched (all the rules, or only whether there are any). */
  load: () => Promise<T>
  /** Also reloaded this often, in case a change message was missed (a Redis reconnect). */
  refreshMs: number
  logger: { warn(obj: object, msg?: string): void }
  /** The value while the first load fails (PostgreSQL down at start); without it, that failure throws. */
  initial?: T
}

export interface AlertRuleWatch<T> {
  /** The last value loaded. */
  current(): T
  /** Reloads now; resolves once loaded (or once the load failed, keeping the previous value). */
  reload(): Promise<void>
  close(): Promise<void>
}

/**
 * Keeps a value read from the alert rules current: loaded at start, again on every change message
 * and every `refreshMs`. A failed load keeps the previous value and is logged.
 */
export async function watchAlertRules<T>(options: AlertRuleWatchOptions<T>): Promise<AlertRuleWatch<T>> {
  let value: T
  try {
    value = await options.load()
  } catch (error) {
    if (!('initial' in options)) throw error
    options.logger.warn({ err: (error as Error).message }, 'could not load the alert rules; retrying')
    value = options.initial as T
  }
  const reload = coalescedRun(() =>
    options.load().then(
      (loaded: T) => {
        value = loaded
      },
      (error: Error) => options.logger.warn({ err: error.message }, 'could not reload the alert rules'),
    ),
  )
  const subscription = await subscribeAlertRuleChanges(
    options.redisTarget,
    options.queuePrefix,
    () => void reload(),
    (error) => options.logger.warn({ err: error.message }, 'alert rule subscription error'),
  )
  const timer = setInterval(() => void reload(), options.refreshMs)
  return {
    current: () => value,
    reload,
    async close() {
      clearInterval(timer)
      await subscription.close()
    },
  }
}
