import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { ErrorResponse, TelemetryPoint } from '@iotflow/contracts'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { telemetryBodyExamples } from '../../lib/telemetry-examples.js'

/** OpenAPI 3 from the route schemas, and Swagger UI at /docs. */
export default fp(
  async (fastify: FastifyInstance) => {
    fastify.addSchema(TelemetryPoint)
    fastify.addSchema(ErrorResponse)
    await fastify.register(swagger, {
      // Every route whose body is the telemetry contract gets one example per body shape.
      transform: ({ schema, url }) => {
        const body = schema?.body as { title?: string } | undefined
        if (body?.title !== 'TelemetryBody') return { schema, url }
        return { schema: { ...schema, body: { ...body, 'x-examples': telemetryBodyExamples } }, url }
      },
      openapi: {
        openapi: '3.0.3',
        // Relative: "Try it out" calls the gateway that served the page, whatever its address.
        servers: [{ url: '/', description: 'this gateway' }],
        info: {
          title: 'IoTFlow API',
          version: '1.0.0',
          description:
            'Telemetry ingestion for IoT fleets. A 202 means the batch is durably queued for both ' +
            'PostgreSQL and InfluxDB.',
        },
        tags: [
          { name: 'devices', description: 'Device registry (admin)' },
          { name: 'telemetry', description: 'Telemetry in (device, edge gateway) and out' },
          { name: 'gateways', description: 'Edge gateway credentials (admin)' },
          {
            name: 'line protocol',
            description: 'InfluxDB write API (v1 and v2) for Telegraf, Vector and InfluxDB clients',
          },
          { name: 'alerts', description: 'Alert rules, alert states and their history (admin)' },
          { name: 'operations', description: 'Health and metrics' },
        ],
        components: {
          securitySchemes: {
            adminBearer: {
              type: 'http',
              scheme: 'bearer',
              description:
                'ADMIN_TOKEN, or an operator token (POST /api/v1/operator-tokens); a read token only reads',
            },
            deviceApiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
            influxToken: {
              type: 'apiKey',
              in: 'header',
              name: 'Authorization',
              description: '`Token <key>`: a device key, or an edge gateway key (line protocol)',
            },
            influxBasic: { type: 'http', scheme: 'basic', description: 'any user name; the key as password' },
            influxQueryPassword: {
              type: 'apiKey',
              in: 'query',
              name: 'p',
              description: 'the key (InfluxDB 1.x)',
            },
          },
        },
      },
    })
    await fastify.register(swaggerUi, { routePrefix: '/docs' })
  },
  { name: 'swagger' },
)
