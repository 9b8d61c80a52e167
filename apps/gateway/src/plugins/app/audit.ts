import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { isChange } from './authentication.js'

/**
 * The audit log: every change made with an operator credential (ADMIN_TOKEN or an operator token),
 * refused ones included (a read token's attempt is worth knowing), written after the answer is
 * sent so it adds nothing to the request's latency. A request without a valid credential is not an
 * operator's and is not logged here (a flood of them would flood the log).
 */
export default fp(
  async (fastify: FastifyInstance) => {
    fastify.addHook('onResponse', async (request, reply) => {
      const operator = request.operator
      if (!operator || !isChange(request.method)) return
      await fastify.auditRepository
        .record({
          token: { id: operator.tokenId, name: operator.name, role: operator.role },
          method: request.method,
          route: request.routeOptions.url ?? request.url.split('?')[0] ?? request.url,
          params: (request.params ?? {}) as Record<string, unknown>,
          status_code: reply.statusCode,
          ip: request.ip,
        })
        .catch((error: unknown) => {
          request.log.error({ err: error }, 'could not write the audit log entry')
        })
    })
  },
  { name: 'audit', dependencies: ['repositories', 'authentication'] },
)
