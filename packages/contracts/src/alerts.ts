import { type Static, Type } from '@sinclair/typebox'
import type { ErrorDetail } from './errors.js'

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) =>
  Type.Union([schema, Type.Null()])

export const AlertCondition = Type.Union(
  [
    Type.Literal('>'),
    Type.Literal('>='),
    Type.Literal('<'),
    Type.Literal('<='),
    Type.Literal('=='),
    Type.Literal('!='),
  ],
  { description: 'how the field compares to the threshold when the rule holds' },
)
export type AlertCondition = Static<typeof AlertCondition>

export const AlertRuleKind = Type.Union([Type.Literal('threshold'), Type.Literal('no_data')])
export const AlertState = Type.Union([
  Type.Literal('inactive'),
  Type.Literal('pending'),
  Type.Literal('firing'),
  Type.Literal('resolved'),
])
export type AlertState = Static<typeof AlertState>

const ruleProperties = {
  name: Type.String({ minLength: 1, maxLength: 128, examples: ['greenhouse too hot'] }),
  kind: Type.Optional(AlertRuleKind),
  field: Type.String({ minLength: 1, maxLength: 512, examples: ['temperature'] }),
  condition: AlertCondition,
  threshold: Type.Number({ examples: [30] }),
  clear_threshold: Type.Number({
    description:
      'hysteresis: a firing alert resolves only once the value is past this (on the non-firing side)',
    examples: [28],
  }),
  for_seconds: Type.Integer({
    minimum: 0,
    maximum: 30 * 86_400,
    description: 'how long (by the points’ own timestamps) the condition must hold before the alert fires',
  }),
  no_data_seconds: Type.Integer({ minimum: 1, maximum: 30 * 86_400 }),
  severity: Type.String({ minLength: 1, maxLength: 64, examples: ['warning', 'critical'] }),
  labels: Type.Record(
    Type.String({ pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$' }),
    Type.String({ maxLength: 1024 }),
    {
      description: 'added to the Alertmanager labels',
      maxProperties: 32,
    },
  ),
  device_ids: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 10_000, uniqueItems: true }),
  device_type: Type.String({ minLength: 1, maxLength: 64 }),
  webhook_url: Type.String({
    pattern: '^https?://',
    maxLength: 2048,
    description: 'each transition to firing or resolved is posted there, signed (X-IoTFlow-Signature)',
    examples: ['https://hooks.example.com/iotflow'],
  }),
  webhook_secret: Type.String({
    minLength: 16,
    maxLength: 256,
    description:
      'the HMAC-SHA256 key of X-IoTFlow-Signature; generated when a webhook_url comes without one, shown once',
  }),
}

export const AlertRuleCreateBody = Type.Object(
  {
    name: ruleProperties.name,
    kind: ruleProperties.kind,
    field: Type.Optional(ruleProperties.field),
    condition: Type.Optional(ruleProperties.condition),
    threshold: Type.Optional(ruleProperties.threshold),
    clear_threshold: Type.Optional(ruleProperties.clear_threshold),
    for_seconds: Type.Optional(ruleProperties.for_seconds),
    no_data_seconds: Type.Optional(ruleProperties.no_data_seconds),
    severity: Type.Optional(ruleProperties.severity),
    labels: Type.Optional(ruleProperties.labels),
    device_ids: Type.Optional(ruleProperties.device_ids),
    device_type: Type.Optional(ruleProperties.device_type),
    webhook_url: Type.Optional(ruleProperties.webhook_url),
    webhook_secret: Type.Optional(ruleProperties.webhook_secret),
  },
  { additionalProperties: false, title: 'AlertRuleCreate' },
)
export type AlertRuleCreateBody = Static<typeof AlertRuleCreateBody>

/** A change to a rule: the fields given replace the rule's; `null` removes an optional one. */
export const AlertRuleUpdateBody = Type.Object(
  {
    name: Type.Optional(ruleProperties.name),
    kind: ruleProperties.kind,
    field: Type.Optional(Nullable(ruleProperties.field)),
    condition: Type.Optional(Nullable(ruleProperties.condition)),
    threshold: Type.Optional(Nullable(ruleProperties.threshold)),
    clear_threshold: Type.Optional(Nullable(ruleProperties.clear_threshold)),
    for_seconds: Type.Optional(ruleProperties.for_seconds),
    no_data_seconds: Type.Optional(Nullable(ruleProperties.no_data_seconds)),
    severity: Type.Optional(ruleProperties.severity),
    labels: Type.Optional(ruleProperties.labels),
    device_ids: Type.Optional(Nullable(ruleProperties.device_ids)),
    device_type: Type.Optional(Nullable(ruleProperties.device_type)),
    webhook_url: Type.Optional(Nullable(ruleProperties.webhook_url)),
    webhook_secret: Type.Optional(ruleProperties.webhook_secret),
  },
  { additionalProperties: false, minProperties: 1, title: 'AlertRuleUpdate' },
)
export type AlertRuleUpdateBody = Static<typeof AlertRuleUpdateBody>

export const AlertRule = Type.Object(
  {
    id: Type.Integer(),
    name: Type.String(),
    kind: AlertRuleKind,
    field: Nullable(Type.String()),
    condition: Nullable(AlertCondition),
    threshold: Nullable(Type.Number()),
    clear_threshold: Nullable(Type.Number()),
    for_seconds: Type.Integer(),
    no_data_seconds: Nullable(Type.Integer()),
    severity: Type.String(),
    labels: Type.Record(Type.String(), Type.String()),
    device_ids: Nullable(Type.Array(Type.Integer())),
    device_type: Nullable(Type.String()),
    webhook_url: Nullable(Type.String({ description: 'its secret is never returned' })),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { title: 'AlertRule' },
)
export type AlertRule = Static<typeof AlertRule>

/** A rule's definition: what a create or a change leaves, before it is stored. */
export type AlertRuleDefinition = Omit<AlertRule, 'id' | 'created_at' | 'updated_at'>

export const AlertRuleEnvelope = Type.Object({ rule: AlertRule }, { title: 'AlertRuleEnvelope' })
/** A rule just created or changed: with its webhook's secret when this is the one time it is shown. */
export const AlertRuleSaved = Type.Object(
  {
    rule: AlertRule,
    webhook_secret: Type.Optional(
      Type.String({
        description:
          'the webhook’s HMAC key: on create whenever the rule has a webhook, on a change when one was generated; never again',
      }),
    ),
  },
  { title: 'AlertRuleSaved' },
)
export const AlertRuleList = Type.Object({ rules: Type.Array(AlertRule) }, { title: 'AlertRuleList' })
export const AlertRuleIdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) })

export const Alert = Type.Object(
  {
    rule_id: Type.Integer(),
    device_id: Type.Integer(),
    state: AlertState,
    since: Type.String({ format: 'date-time', description: 'the time of the point that made this state' }),
    value: Nullable(Type.Number()),
  },
  { title: 'Alert' },
)
export type Alert = Static<typeof Alert>

export const AlertListQuery = Type.Object(
  {
    state: Type.Optional(
      Type.Union([Type.Literal('pending'), Type.Literal('firing'), Type.Literal('resolved')]),
    ),
    device_id: Type.Optional(Type.Integer({ minimum: 1 })),
    rule_id: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
)
export type AlertListQuery = Static<typeof AlertListQuery>
export const AlertList = Type.Object({ alerts: Type.Array(Alert) }, { title: 'AlertList' })

export const AlertTransition = Type.Object(
  {
    id: Type.Integer(),
    rule_id: Type.Integer(),
    device_id: Type.Integer(),
    from: AlertState,
    to: AlertState,
    at: Type.String({ format: 'date-time', description: 'the time of the point that made the transition' }),
    value: Nullable(Type.Number()),
    recorded_at: Type.String({ format: 'date-time' }),
  },
  { title: 'AlertTransition' },
)
export type AlertTransition = Static<typeof AlertTransition>

export const AlertHistoryQuery = Type.Object(
  {
    device_id: Type.Optional(Type.Integer({ minimum: 1 })),
    rule_id: Type.Optional(Type.Integer({ minimum: 1 })),
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  },
  { additionalProperties: false },
)
export type AlertHistoryQuery = Static<typeof AlertHistoryQuery>
export const AlertHistory = Type.Object(
  { transitions: Type.Array(AlertTransition, { description: 'newest first' }) },
  { title: 'AlertHistory' },
)

/** The conditions whose firing side is above the threshold. */
const ABOVE: ReadonlySet<AlertCondition> = new Set(['>', '>='])
const BELOW: ReadonlySet<AlertCondition> = new Set(['<', '<='])

/** A rule's definition from a create body, with the contract's defaults. */
export function ruleDefinitionFrom(body: AlertRuleCreateBody): AlertRuleDefinition {
  return {
    name: body.name,
    kind: body.kind ?? 'threshold',
    field: body.field ?? null,
    condition: body.condition ?? null,
    threshold: body.threshold ?? null,
    clear_threshold: body.clear_threshold ?? null,
    for_seconds: body.for_seconds ?? 0,
    no_data_seconds: body.no_data_seconds ?? null,
    severity: body.severity ?? 'warning',
    labels: body.labels ?? {},
    device_ids: body.device_ids ?? null,
    device_type: body.device_type ?? null,
    webhook_url: body.webhook_url ?? null,
  }
}

/** A rule's definition with a change applied (`null` removes a field). */
export function applyRuleUpdate(rule: AlertRuleDefinition, patch: AlertRuleUpdateBody): AlertRuleDefinition {
  const { webhook_secret: _secret, ...fields } = patch
  return { ...rule, ...(fields as Partial<AlertRuleDefinition>) }
}

/**
 * What a create or a change does to a rule's webhook secret: `set` a given or generated one
 * (`shown` when the caller is to see it), `clear` it (no webhook left), or `keep` it. A secret
 * without a webhook is a 400 naming `body.webhook_secret`.
 */
export function webhookSecretChange(
  before: { webhook_url: string | null } | undefined,
  after: AlertRuleDefinition,
  givenSecret: string | undefined,
  generate: () => string,
):
  | { action: 'set'; secret: string; shown: boolean }
  | { action: 'clear' }
  | { action: 'keep' }
  | { action: 'refuse'; problem: ErrorDetail } {
  if (after.webhook_url === null) {
    if (givenSecret !== undefined)
      return {
        action: 'refuse',
        problem: { path: 'body.webhook_secret', message: 'is only for a rule with a webhook_url' },
      }
    return { action: 'clear' }
  }
  if (givenSecret !== undefined) return { action: 'set', secret: givenSecret, shown: before === undefined }
  if (before === undefined || before.webhook_url === null)
    return { action: 'set', secret: generate(), shown: true }
  return { action: 'keep' }
}

/**
 * What makes a rule's definition meaningless as a whole, each problem naming its field in the body
 * (`body.threshold`); empty when the rule is sound. The schema checks each field alone; this checks
 * them together.
 */
export function alertRuleProblems(rule: AlertRuleDefinition): ErrorDetail[] {
  const problems: ErrorDetail[] = []
  const problem = (field: string, message: string) => problems.push({ path: `body.${field}`, message })
  if (rule.device_ids !== null && rule.device_type !== null)
    problem('device_type', 'device_ids and device_type exclude each other (neither: every device)')
  if (rule.kind === 'no_data') {
    if (rule.no_data_seconds === null) problem('no_data_seconds', 'is required for a no_data rule')
    return problems
  }
  if (rule.field === null) problem('field', 'is required for a threshold rule')
  if (rule.condition === null) problem('condition', 'is required for a threshold rule')
  if (rule.threshold === null) problem('threshold', 'is required for a threshold rule')
  if (rule.no_data_seconds !== null) problem('no_data_seconds', 'is only for a no_data rule')
  const { condition, threshold, clear_threshold: clear } = rule
  if (clear === null || condition === null || threshold === null) return problems
  if (!ABOVE.has(condition) && !BELOW.has(condition)) {
    problem('clear_threshold', `has no meaning with condition ${condition}`)
  } else if (conditionHolds(condition, clear, threshold)) {
    problem('clear_threshold', `must be on the non-firing side of threshold ${threshold} (${condition})`)
  }
  return problems
}

/** Whether `value` satisfies `condition` against `threshold`. */
export function conditionHolds(condition: AlertCondition, value: number, threshold: number): boolean {
  switch (condition) {
    case '>':
      return value > threshold
    case '>=':
      return value >= threshold
    case '<':
      return value < threshold
    case '<=':
      return value <= threshold
    case '==':
      return value === threshold
    case '!=':
      return value !== threshold
  }
}

/** One alert as Alertmanager's v2 API takes it (`POST /api/v2/alerts`). */
export interface AlertmanagerAlert {
  labels: Record<string, string>
  annotations?: Record<string, string>
  startsAt: string
  endsAt?: string
}

/** What a transition to firing or resolved publishes on MQTT (`<root>/devices/{id}/alerts`, `<root>/alerts`). */
export interface AlertNotice {
  /**
   * The transition's id: the same on every attempt, and higher for a (rule, device)'s later
   * transitions, so a subscriber drops a repeat and one older than the newest it has seen.
   */
  transition_id: number
  rule_id: number
  rule: string
  device_id: number
  state: 'firing' | 'resolved'
  /** The time of the point that made the transition (ISO-8601). */
  at: string
  value: number | null
  severity: string
  labels: Record<string, string>
}

/** What a rule's webhook is posted (the JSON body, signed): the MQTT notice. */
export type WebhookNotice = AlertNotice
