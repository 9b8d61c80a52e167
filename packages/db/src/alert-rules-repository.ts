import type { AlertCondition, AlertRule, AlertRuleDefinition } from '@iotflow/contracts'
import type { Sql } from './client.js'

export class DuplicateAlertRuleNameError extends Error {
  constructor(name: string) {
    super(`an alert rule named "${name}" already exists`)
    this.name = 'DuplicateAlertRuleNameError'
  }
}

interface AlertRuleRow extends Omit<AlertRule, 'created_at' | 'updated_at' | 'condition'> {
  condition: AlertCondition | null
  created_at: Date
  updated_at: Date
}

const RULE_COLUMNS = [
  'id',
  'name',
  'kind',
  'field',
  'condition',
  'threshold',
  'clear_threshold',
  'for_seconds',
  'no_data_seconds',
  'severity',
  'labels',
  'device_ids',
  'device_type',
  'webhook_url',
  'created_at',
  'updated_at',
] as const

const toRule = (row: AlertRuleRow): AlertRule => ({
  ...row,
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString(),
})

const isUniqueViolation = (error: unknown) => (error as { code?: string }).code === '23505'

/** Alert rules (docs/alerts.md): the gateway manages them, the evaluator reads them all. */
export function createAlertRulesRepository(sql: Sql) {
  const columnsOf = (rule: AlertRuleDefinition) => ({
    ...rule,
    labels: sql.json(rule.labels),
    device_ids: rule.device_ids === null ? null : sql.array(rule.device_ids, 23),
  })
  return {
    /** `webhookSecret`: the key of its webhook's signatures (null without a webhook). */
    async create(rule: AlertRuleDefinition, webhookSecret: string | null = null): Promise<AlertRule> {
      try {
        const [row] = await sql<AlertRuleRow[]>`
          INSERT INTO alert_rules ${sql({ ...columnsOf(rule), webhook_secret: webhookSecret })}
          RETURNING ${sql(RULE_COLUMNS)}`
        return toRule(row as AlertRuleRow)
      } catch (error) {
        if (isUniqueViolation(error)) throw new DuplicateAlertRuleNameError(rule.name)
        throw error
      }
    },

    async findById(id: number): Promise<AlertRule | undefined> {
      const [row] = await sql<AlertRuleRow[]>`SELECT ${sql(RULE_COLUMNS)} FROM alert_rules WHERE id = ${id}`
      return row ? toRule(row) : undefined
    },

    async list(): Promise<AlertRule[]> {
      const rows = await sql<AlertRuleRow[]>`SELECT ${sql(RULE_COLUMNS)} FROM alert_rules ORDER BY id`
      return rows.map(toRule)
    },

    async count(): Promise<number> {
      const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM alert_rules`
      return row?.n ?? 0
    },

    /**
     * Replaces the rule's definition; undefined when there is no such rule. `webhookSecret`: a new
     * key, null to remove it, undefined to keep the one stored.
     */
    async replace(
      id: number,
      rule: AlertRuleDefinition,
      webhookSecret?: string | null,
    ): Promise<AlertRule | undefined> {
      const secret = webhookSecret === undefined ? {} : { webhook_secret: webhookSecret }
      try {
        const [row] = await sql<AlertRuleRow[]>`
          UPDATE alert_rules SET ${sql({ ...columnsOf(rule), ...secret, updated_at: new Date() })}
          WHERE id = ${id} RETURNING ${sql(RULE_COLUMNS)}`
        return row ? toRule(row) : undefined
      } catch (error) {
        if (isUniqueViolation(error)) throw new DuplicateAlertRuleNameError(rule.name)
        throw error
      }
    },

    /** Where and with which key a rule's notifications are posted; undefined without a webhook. */
    async webhookOf(id: number): Promise<{ url: string; secret: string } | undefined> {
      const [row] = await sql<{ url: string; secret: string }[]>`
        SELECT webhook_url AS url, webhook_secret AS secret FROM alert_rules
        WHERE id = ${id} AND webhook_url IS NOT NULL AND webhook_secret IS NOT NULL`
      return row
    },

    /** Deletes the rule with its states and history; false when there was none. */
    async delete(id: number): Promise<boolean> {
      const deleted = await sql`DELETE FROM alert_rules WHERE id = ${id}`
      return deleted.count > 0
    },
  }
}

export type AlertRulesRepository = ReturnType<typeof createAlertRulesRepository>
