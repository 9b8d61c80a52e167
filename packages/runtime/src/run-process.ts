import closeWithGrace from 'close-with-grace'
import { type MetricsExposition, type ReadinessCheck, startHealthServer } from './health-server.js'
import { createLogger } from './logger.js'
import { applyProcessNice } from './process-nice.js'

/** The settings every process that is not Fastify reads to start. */
export interface ProcessConfig {
  LOG_LEVEL: string
  PROCESS_NICE: number
  HEALTH_HOST: string
  HEALTH_PORT: number
}

/** What such a process starts: a readiness check for /health/ready, and an idempotent close. */
export interface RunningProcess {
  ready: ReadinessCheck
  close(): Promise<void>
}

export interface ProcessSpec<C extends ProcessConfig, P extends RunningProcess> {
  /** The log name (`writer-postgres`). */
  name: string
  /** Started first, shut down last (startTracing's answer). */
  tracing: { shutdown(): Promise<void> }
  /** Reads the config, exiting with a message when it is invalid (loadConfigOrExit). */
  config: () => C
  start(config: C, logger: ReturnType<typeof createLogger>): Promise<P>
  /** GET /metrics of the health server. */
  metrics(running: P): ReturnType<MetricsExposition>
  /** More fields for the "started" log line. */
  startedDetails?(config: C): object
}

/**
 * The startup and shutdown shared by the writers, the MQTT bridge and the alert evaluator: logger,
 * scheduling priority, the process itself, its health server, then a graceful close on a signal or
 * a crash (health first, so a load balancer stops sending; tracing last, so the close is traced).
 */
export async function runProcess<C extends ProcessConfig, P extends RunningProcess>(
  spec: ProcessSpec<C, P>,
): Promise<P> {
  const config = spec.config()
  const logger = createLogger(spec.name, config.LOG_LEVEL)
  applyProcessNice(config.PROCESS_NICE, logger)
  const running = await spec.start(config, logger)
  const health = await startHealthServer(config.HEALTH_HOST, config.HEALTH_PORT, running.ready, () =>
    spec.metrics(running),
  )
  logger.info(
    { ...spec.startedDetails?.(config), health: `http://${config.HEALTH_HOST}:${health.port}/health` },
    `${spec.name} started`,
  )
  closeWithGrace({ delay: 20_000 }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an error')
    else logger.info({ signal }, 'shutting down')
    await health.close()
    await running.close()
    await spec.tracing.shutdown()
  })
  return running
}
