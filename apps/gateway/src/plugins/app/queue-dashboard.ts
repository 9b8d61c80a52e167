import { createBullBoard } from '@bull-board/api'
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter'
import { FastifyAdapter } from '@bull-board/fastify'
import type { ErrorResponse } from '@iotflow/contracts'
import {
  allPartitions,
  bullPrefix,
  partitionPrefix,
  type QueueLayout,
  qualifiedByPartition,
  queueCatalog,
} from '@iotflow/queue'
import { Queue } from 'bullmq'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ADMIN_SCHEME, isChange } from './authentication.js'

export interface QueueDashboardOptions {
  /** Every queue partition is shown. */
  queues: QueueLayout
  basePath?: string
}

const BASIC_SCHEME = /^basic\s+(.+)$/i

/**
 * bull-board at /admin/queues for every queue of the pipeline, in every queue partition (named
 * `p<k>/<queue>` when there are several): jobs per state, retry and replay of failed ones. Operators only: a browser logs in with HTTP basic auth (any user name, the admin
 * token or an operator token as password); scripts may send `Authorization: Bearer <token>` as
 * elsewhere. A `read` token sees everything and changes nothing (retry, clean, promote: 403).
 */
export default fp(
  async (fastify: FastifyInstance, options: QueueDashboardOptions) => {
    const basePath = options.basePath ?? '/admin/queues'
    const layout = options.queues
    const queueIn = (name: string, queuePrefix: string) =>
      new Queue(name, { connection: fastify.redis, prefix: bullPrefix(queuePrefix) })
    // The device-batch queues once per partition; the alert deliveries once, under the base prefix.
    const boards = Object.entries(queueCatalog).flatMap(([key, entry]) =>
      key === 'alertDeliver'
        ? [{ queue: queueIn(entry.name, layout.prefix), label: '' }]
        : allPartitions(layout).map((partition) => ({
            queue: queueIn(entry.name, partitionPrefix(layout, partition)),
            label: qualifiedByPartition(layout, partition, ''),
          })),
    )
    const queues = boards.map(({ queue }) => queue)
    const serverAdapter = new FastifyAdapter().setBasePath(basePath)
    createBullBoard({
      queues: boards.map(({ queue, label }) => new BullMQAdapter(queue, { prefix: label })),
      serverAdapter,
      options: { uiConfig: { boardTitle: 'IoTFlow queues' } },
    })

    await fastify.register(async (dashboard) => {
      // Answered here rather than thrown: bull-board's own error handler would mask it as a 500.
      dashboard.addHook('onRequest', async (request, reply) => {
        const operator = await fastify.operatorOf(operatorSecretOf(request))
        if (operator) request.operator = operator
        if (operator && (operator.role === 'admin' || !isChange(request.method))) return
        if (operator) {
          return reply.code(403).send({
            statusCode: 403,
            error: 'Forbidden',
            message: `token "${operator.name}" has the read role: it cannot retry, clean or change jobs`,
          } satisfies ErrorResponse)
        }
        return reply
          .code(401)
          .header('www-authenticate', 'Basic realm="IoTFlow admin", charset="UTF-8"')
          .send({
            statusCode: 401,
            error: 'Unauthorized',
            message:
              'operator credentials are required: basic auth with the ADMIN_TOKEN or an operator token as password',
          } satisfies ErrorResponse)
      })
      await dashboard.register(serverAdapter.registerPlugin(), { prefix: basePath })
    })
    fastify.addHook('onClose', async () => {
      await Promise.all(queues.map((queue) => queue.close()))
    })
  },
  { name: 'queue-dashboard', dependencies: ['queue', 'authentication'] },
)

/** The operator secret from basic auth (its password) or from the Bearer / `admin` schemes. */
function operatorSecretOf(request: FastifyRequest): string {
  const header = request.headers.authorization ?? ''
  const basic = BASIC_SCHEME.exec(header)
  if (basic?.[1]) {
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8')
    return decoded.slice(decoded.indexOf(':') + 1)
  }
  return ADMIN_SCHEME.exec(header)?.[1] ?? ''
}
