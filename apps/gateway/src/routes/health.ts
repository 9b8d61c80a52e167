import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'

const Alive = Type.Object({ status: Type.Literal('healthy') })
const Dependency = Type.Object({
  status: Type.Union([Type.Literal('up'), Type.Literal('down')]),
  error: Type.Optional(Type.String()),
})
const Backlog = Type.Object(
  {
    state: Type.Union([Type.Literal('ok'), Type.Literal('over-limit')], {
      description: 'over-limit: telemetry is refused with 503 (HTTP) or held (MQTT); the gateway stays ready',
    }),
    limit: Type.Integer({ description: 'BACKLOG_MAX_POINTS' }),
    points: Type.Record(Type.String(), Type.Integer(), {
      description: 'points queued but not yet stored, per store queue, over every queue partition',
    }),
    partitions: Type.Optional(
      Type.Record(Type.String(), Type.Record(Type.String(), Type.Integer()), {
        description: 'with QUEUE_PARTITIONS > 1: each partition’s share of `points`, by partition number',
      }),
    ),
  },
  { title: 'Backlog' },
)
const SettingOrNull = Type.Union([Type.String(), Type.Null()], { description: 'null: CONFIG refused' })
const RedisDurability = Type.Object(
  {
    durable: Type.Union([Type.Boolean(), Type.Null()], {
      description:
        'true: append-only file and noeviction; false: acknowledged points may be lost; null: cannot tell (CONFIG refused)',
    }),
    appendonly: SettingOrNull,
    appendfsync: SettingOrNull,
    maxmemory_policy: SettingOrNull,
    problems: Type.Array(Type.String(), { description: 'what breaks the promise, in words' }),
  },
  { title: 'RedisDurability' },
)
const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('degraded')]),
  dependencies: Type.Record(Type.String(), Dependency),
  queues: Type.Optional(Type.Record(Type.String(), Type.Record(Type.String(), Type.Integer()))),
  backlog: Type.Optional(Backlog),
  redis_durability: Type.Optional(RedisDurability),
})

const health: FastifyPluginAsyncTypebox = async (fastify) => {
  async function readiness() {
    const { ready, dependencies, queues, backlog, redisDurability } = await fastify.readiness()
    return {
      ready,
      body: {
        status: ready ? ('ready' as const) : ('degraded' as const),
        dependencies,
        queues,
        backlog,
        redis_durability: redisDurability,
      },
    }
  }

  fastify.get(
    '/health',
    {
      schema: {
        tags: ['operations'],
        summary: 'Liveness; with ?detailed=true, the same as /health/ready',
        querystring: Type.Object({ detailed: Type.Optional(Type.Boolean()) }),
        response: { 200: Type.Union([Alive, Readiness]), 503: Readiness },
      },
    },
    async (request, reply) => {
      if (!request.query.detailed) return { status: 'healthy' as const }
      const { ready, body } = await readiness()
      return reply.code(ready ? 200 : 503).send(body)
    },
  )

  fastify.get(
    '/health/ready',
    {
      schema: {
        tags: ['operations'],
        summary:
          'Each dependency, the queue depths and the backlog; 503 when a dependency is down (not when the backlog is over its limit)',
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (_request, reply) => {
      const { ready, body } = await readiness()
      return reply.code(ready ? 200 : 503).send(body)
    },
  )
}

export default health
