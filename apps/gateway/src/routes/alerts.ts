import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import { AlertHistory, AlertHistoryQuery, AlertList, AlertListQuery } from '@iotflow/contracts'

const ErrorRef = Type.Ref('ErrorResponse')
const adminOnly = [{ adminBearer: [] }]

/** Alert states and their history, as the alert evaluator stores them (docs/alerts.md). */
const alerts: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get(
    '/api/v1/alerts',
    {
      onRequest: fastify.requireOperator,
      schema: {
        tags: ['alerts'],
        summary: 'Alerts pending, firing or resolved, by state, device and rule',
        security: adminOnly,
        querystring: AlertListQuery,
        response: { 200: AlertList, 400: ErrorRef, 401: ErrorRef },
      },
    },
    async (request) => ({ alerts: await fastify.alertStatesRepository.list(request.query) }),
  )

  fastify.get(
    '/api/v1/alerts/history',
    {
      onRequest: fastify.requireOperator,
      schema: {
        tags: ['alerts'],
        summary: 'Transitions of alert states, newest first',
        security: adminOnly,
        querystring: AlertHistoryQuery,
        response: { 200: AlertHistory, 400: ErrorRef, 401: ErrorRef },
      },
    },
    async (request) => ({ transitions: await fastify.alertStatesRepository.history(request.query) }),
  )
}

export default alerts
