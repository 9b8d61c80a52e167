import {
  type AlertRulesRepository,
  type AlertStatesRepository,
  type AuditRepository,
  createAlertRulesRepository,
  createAlertStatesRepository,
  createAuditRepository,
  createDevicesRepository,
  createEdgeGatewaysRepository,
  createOperatorTokensRepository,
  createTelemetryQueryRepository,
  type DevicesRepository,
  type EdgeGatewayIdentity,
  type EdgeGatewaysRepository,
  type OperatorTokensRepository,
  type TelemetryQueryRepository,
} from '@iotflow/db'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyRequest {
    /** The edge gateway that sent a bulk request. */
    edgeGateway: EdgeGatewayIdentity | null
  }
  interface FastifyInstance {
    devicesRepository: DevicesRepository
    edgeGatewaysRepository: EdgeGatewaysRepository
    telemetryQueries: TelemetryQueryRepository
    alertRulesRepository: AlertRulesRepository
    alertStatesRepository: AlertStatesRepository
    operatorTokensRepository: OperatorTokensRepository
    auditRepository: AuditRepository
  }
}

export default fp(
  async (fastify: FastifyInstance) => {
    fastify.decorate('devicesRepository', createDevicesRepository(fastify.sql))
    fastify.decorate('telemetryQueries', createTelemetryQueryRepository(fastify.sql))
    fastify.decorate('edgeGatewaysRepository', createEdgeGatewaysRepository(fastify.sql))
    fastify.decorate('alertRulesRepository', createAlertRulesRepository(fastify.sql))
    fastify.decorate('alertStatesRepository', createAlertStatesRepository(fastify.sql))
    fastify.decorate('operatorTokensRepository', createOperatorTokensRepository(fastify.sql))
    fastify.decorate('auditRepository', createAuditRepository(fastify.sql))
    fastify.decorateRequest('edgeGateway', null)
  },
  { name: 'repositories', dependencies: ['postgres'] },
)
