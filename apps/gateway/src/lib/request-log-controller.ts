import { type FastifyReply, type FastifyRequest, LogController } from 'fastify'
import { isLevelEnabled } from './lazy-child-logger.js'

/**
 * Fastify's per-request log lines, made cheap: no "incoming request" line, and one "request
 * completed" line (request id, device id when a device key was used, method, URL with credentials
 * masked by the `req` serializer, status, time taken) written by the app's logger with those fields,
 * so no per-request child logger is built for it (see LazyChildLogger).
 */
export class RequestLogController extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    const log = request.server.log
    if (!isLevelEnabled(log, error ? 'error' : 'info')) return
    const line = {
      reqId: request.id,
      ...(request.device && { device_id: request.device.id }),
      req: request,
      res: { statusCode: reply.statusCode },
      responseTime: reply.elapsedTime,
    }
    if (error) log.error({ ...line, err: error }, 'request errored')
    else log.info(line, 'request completed')
  }
}
