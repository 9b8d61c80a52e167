import { randomBytes } from 'node:crypto'
import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import {
  type AlertRule,
  AlertRuleCreateBody,
  type AlertRuleDefinition,
  AlertRuleEnvelope,
  AlertRuleIdParams,
  AlertRuleList,
  AlertRuleSaved,
  AlertRuleUpdateBody,
  alertRuleProblems,
  applyRuleUpdate,
  ruleDefinitionFrom,
  webhookSecretChange,
} from '@iotflow/contracts'
import { DuplicateAlertRuleNameError } from '@iotflow/db'
import { publishAlertRulesChanged } from '@iotflow/queue'
import { httpError } from '../lib/http-error.js'

const ErrorRef = Type.Ref('ErrorResponse')
const adminOnly = [{ adminBearer: [] }]

export interface AlertRulesRoutesOptions {
  queuePrefix: string
}

/** The alert rules (docs/alerts.md): admin only; every change is announced to producers and evaluators. */
const alertRules: FastifyPluginAsyncTypebox<AlertRulesRoutesOptions> = async (fastify, options) => {
  const repo = fastify.alertRulesRepository
  const found = (rule: AlertRule | undefined, id: number) => {
    if (!rule) throw httpError(404, `no alert rule ${id}`)
    return rule
  }
  /**
   * A rule that makes sense as a whole, or a 400 naming each field that does not; with what
   * becomes of its webhook's secret (given, generated, removed or kept).
   */
  const checked = (
    before: AlertRuleDefinition | undefined,
    rule: AlertRuleDefinition,
    givenSecret: string | undefined,
  ) => {
    const problems = alertRuleProblems(rule)
    const secret = webhookSecretChange(before, rule, givenSecret, () => randomBytes(32).toString('base64url'))
    if (secret.action === 'refuse') problems.push(secret.problem)
    if (problems.length > 0 || secret.action === 'refuse')
      throw httpError(400, 'the alert rule is not valid', problems)
    return { rule, secret }
  }
  const asConflict = (error: unknown): never => {
    if (error instanceof DuplicateAlertRuleNameError) throw httpError(409, error.message)
    throw error
  }
  /** Tells every instance; this gateway's own fan-out switch is current before the answer. */
  const announce = async () => {
    await publishAlertRulesChanged(fastify.redis, options.queuePrefix)
    await fastify.alertRulesExist.reload()
  }

  fastify.post(
    '/api/v1/alert-rules',
    {
      onRequest: fastify.requireOperator,
      schema: {
        tags: ['alerts'],
        summary:
          'Create an alert rule (threshold or no_data) on some devices, a device type, or every device',
        security: adminOnly,
        body: AlertRuleCreateBody,
        response: { 201: AlertRuleSaved, 400: ErrorRef, 401: ErrorRef, 403: ErrorRef, 409: ErrorRef },
      },
    },
    async (request, reply) => {
      const { webhook_secret: given } = request.body
      const { rule: definition, secret } = checked(undefined, ruleDefinitionFrom(request.body), given)
      const webhookSecret = secret.action === 'set' ? secret.secret : null
      const rule = await repo.create(definition, webhookSecret).catch(asConflict)
      await announce()
      reply.code(201)
      // Shown this once (the caller may have given it): never returned afterwards.
      return webhookSecret === null ? { rule } : { rule, webhook_secret: webhookSecret }
    },
  )

  fastify.get(
    '/api/v1/alert-rules',
    {
      onRequest: fastify.requireOperator,
      schema: {
        tags: ['alerts'],
        summary: 'Every alert rule',
        security: adminOnly,
        response: { 200: AlertRuleList, 401: ErrorRef },
      },
    },
    async () => ({ rules: await repo.list() }),
  )

  const byId = { tags: ['alerts'], security: adminOnly, params: AlertRuleIdParams }
  fastify.get(
    '/api/v1/alert-rules/:id',
    {
      onRequest: fastify.requireOperator,
      schema: {
        ...byId,
        summary: 'One alert rule',
        response: { 200: AlertRuleEnvelope, 401: ErrorRef, 404: ErrorRef },
      },
    },
    async (request) => ({ rule: found(await repo.findById(request.params.id), request.params.id) }),
  )

  fastify.patch(
    '/api/v1/alert-rules/:id',
    {
      onRequest: fastify.requireOperator,
      schema: {
        ...byId,
        summary: 'Change an alert rule (null removes an optional field); the result is checked as a whole',
        body: AlertRuleUpdateBody,
        response: {
          200: AlertRuleSaved,
          400: ErrorRef,
          401: ErrorRef,
          403: ErrorRef,
          404: ErrorRef,
          409: ErrorRef,
        },
      },
    },
    async (request) => {
      const { id } = request.params
      const { id: _id, created_at, updated_at, ...current } = found(await repo.findById(id), id)
      const { rule: changed, secret } = checked(
        current,
        applyRuleUpdate(current, request.body),
        request.body.webhook_secret,
      )
      const webhookSecret =
        secret.action === 'set' ? secret.secret : secret.action === 'clear' ? null : undefined
      const rule = found(await repo.replace(id, changed, webhookSecret).catch(asConflict), id)
      await announce()
      // A generated secret is shown this once; a given one is the caller's already.
      return secret.action === 'set' && secret.shown ? { rule, webhook_secret: secret.secret } : { rule }
    },
  )

  fastify.delete(
    '/api/v1/alert-rules/:id',
    {
      onRequest: fastify.requireOperator,
      schema: {
        ...byId,
        summary: 'Delete an alert rule with its states and history',
        response: { 204: Type.Null({ description: 'deleted' }), 401: ErrorRef, 403: ErrorRef, 404: ErrorRef },
      },
    },
    async (request, reply) => {
      if (!(await repo.delete(request.params.id))) throw httpError(404, `no alert rule ${request.params.id}`)
      await announce()
      return reply.code(204).send(null)
    },
  )
}

export default alertRules
