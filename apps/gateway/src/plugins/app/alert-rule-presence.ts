import type { RedisTarget } from '@iotflow/config'
import { createAlertRulesRepository } from '@iotflow/db'
import { type AlertRuleWatch, watchAlertRules } from '@iotflow/queue'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    /** Whether any alert rule exists: only then does a batch also go to the alert evaluator. */
    alertRulesExist: AlertRuleWatch<boolean>
  }
}

export interface AlertRulePresenceOptions {
  redisTarget: RedisTarget
  queuePrefix: string
  refreshMs: number
}

/**
 * Keeps "is there any alert rule?" current (at start, on every change any gateway announces, and
 * every `refreshMs`), so that an installation without rules, or without an evaluator, never queues
 * alert jobs nobody consumes (docs/alerts.md).
 */
export default fp(
  async (fastify: FastifyInstance, options: AlertRulePresenceOptions) => {
    const rules = createAlertRulesRepository(fastify.sql)
    const watch = await watchAlertRules({
      ...options,
      load: async () => (await rules.count()) > 0,
      logger: fastify.log,
      // Unknown (PostgreSQL down at start): fan out, so no alert is missed; the evaluator drops
      // batches no rule watches.
      initial: true,
    })
    fastify.decorate('alertRulesExist', watch)
    fastify.addHook('onClose', () => watch.close())
  },
  { name: 'alert-rule-presence', dependencies: ['postgres'] },
)
