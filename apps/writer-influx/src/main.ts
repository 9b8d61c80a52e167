import { loadConfigOrExit, loadWriterInfluxConfig } from '@iotflow/config'
import { exposition } from '@iotflow/metrics'
import { applyProcessNice, createLogger, startHealthServer } from '@iotflow/runtime'
import { startTracing } from '@iotflow/tracing'
import closeWithGrace from 'close-with-grace'
import { startInfluxWriter } from './writer.js'

const tracing = await startTracing('iotflow-writer-influx')
const config = loadConfigOrExit(loadWriterInfluxConfig)

const logger = createLogger('writer-influx', config.LOG_LEVEL)
applyProcessNice(config.PROCESS_NICE, logger)
const writer = await startInfluxWriter(config, logger)
const health = await startHealthServer(config.HEALTH_HOST, config.HEALTH_PORT, writer.ready, () =>
  exposition(writer.metrics.registry),
)
logger.info(
  {
    api: config.INFLUX_API,
    influx: config.INFLUX_URL,
    health: `http://${config.HEALTH_HOST}:${health.port}/health`,
  },
  'writer-influx started',
)

closeWithGrace({ delay: 20_000 }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'shutting down after an error')
  else logger.info({ signal }, 'shutting down')
  await health.close()
  await writer.close()
  await tracing.shutdown()
})
