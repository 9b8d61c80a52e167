import { loadConfigOrExit, loadWriterPostgresConfig } from '@iotflow/config'
import { exposition } from '@iotflow/metrics'
import { applyProcessNice, createLogger, startHealthServer } from '@iotflow/runtime'
import { startTracing } from '@iotflow/tracing'
import closeWithGrace from 'close-with-grace'
import { startPostgresWriter } from './writer.js'

const tracing = await startTracing('iotflow-writer-postgres')
const config = loadConfigOrExit(loadWriterPostgresConfig)

const logger = createLogger('writer-postgres', config.LOG_LEVEL)
applyProcessNice(config.PROCESS_NICE, logger)
const writer = await startPostgresWriter(config, logger)
const health = await startHealthServer(config.HEALTH_HOST, config.HEALTH_PORT, writer.ready, () =>
  exposition(writer.metrics.registry),
)
logger.info({ health: `http://${config.HEALTH_HOST}:${health.port}/health` }, 'writer-postgres started')

closeWithGrace({ delay: 20_000 }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'shutting down after an error')
  else logger.info({ signal }, 'shutting down')
  await health.close()
  await writer.close()
  await tracing.shutdown()
})
