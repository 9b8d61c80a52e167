import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'

const State = Type.Object({
  status: Type.Union([Type.Literal('up'), Type.Literal('down'), Type.Literal('unknown')]),
  error: Type.Optional(Type.String()),
})
const InfluxHealth = Type.Object(
  {
    status: Type.Union([Type.Literal('healthy'), Type.Literal('unhealthy')]),
    message: Type.String(),
    influxdb: State,
    writer: Type.Intersect([State, Type.Object({ url: Type.String() })]),
    pending_points: Type.Optional(
      Type.Integer({ description: 'points queued for InfluxDB and not yet written' }),
    ),
  },
  { title: 'InfluxHealth' },
)

/** What the InfluxDB writer's GET /health/ready answers (packages/runtime health-server). */
interface WriterReport {
  dependencies?: Record<string, { status: 'up' | 'down'; error?: string }>
  backlog?: { points?: Record<string, number> }
}

export interface InfluxHealthOptions {
  /** The InfluxDB writer's health server (INFLUX_WRITER_HEALTH_URL). */
  writerHealthUrl: string
}

const ASK_TIMEOUT_MS = 3_000

/**
 * GET /api/v1/influxdb/health, the predecessor's route: InfluxDB as the InfluxDB writer sees it (the
 * process that writes there, with its own INFLUX_* settings), asked at its health server. The
 * gateway never talks to InfluxDB itself; an unreachable writer is unhealthy too, since nothing
 * reaches InfluxDB without it.
 */
const influxdbHealth: FastifyPluginAsyncTypebox<InfluxHealthOptions> = async (fastify, options) => {
  const readyUrl = new URL('/health/ready', options.writerHealthUrl).href

  fastify.get(
    '/api/v1/influxdb/health',
    {
      schema: {
        tags: ['operations'],
        summary: "InfluxDB as the InfluxDB writer sees it (predecessor's route); 503 when unhealthy",
        response: { 200: InfluxHealth, 503: InfluxHealth },
      },
    },
    async (_request, reply) => {
      let report: WriterReport
      try {
        const response = await fetch(readyUrl, { signal: AbortSignal.timeout(ASK_TIMEOUT_MS) })
        report = (await response.json()) as WriterReport
      } catch (error) {
        return reply.code(503).send({
          status: 'unhealthy' as const,
          message: 'the InfluxDB writer does not answer; nothing is being written to InfluxDB',
          influxdb: { status: 'unknown' as const },
          writer: { status: 'down' as const, url: options.writerHealthUrl, error: (error as Error).message },
        })
      }
      const influxdb = report.dependencies?.influxdb ?? { status: 'down' as const, error: 'not reported' }
      const pending = report.backlog?.points?.['store-influx']
      const healthy = influxdb.status === 'up'
      return reply.code(healthy ? 200 : 503).send({
        status: healthy ? ('healthy' as const) : ('unhealthy' as const),
        message: healthy
          ? 'the InfluxDB writer reaches InfluxDB'
          : 'the InfluxDB writer cannot reach InfluxDB; points wait in the queue until it can',
        influxdb,
        writer: { status: 'up' as const, url: options.writerHealthUrl },
        ...(pending !== undefined && { pending_points: pending }),
      })
    },
  )
}

export default influxdbHealth
