import { loadAlertEvaluatorConfig, loadConfigOrExit } from '@iotflow/config'
import { exposition } from '@iotflow/metrics'
import { applyProcessNice, createLogger, startHealthServer } from '@iotflow/runtime'
import { startTracing } from '@iotflow/tracing'
import closeWithGrace from 'close-with-grace'
import { startAlertEvaluator } from './evaluator.js'

const tracing = await startTracing('iotflow-alert-evaluator')
const config = loadConfigOrExit(loadAlertEvaluatorConfig)

const logger = createLogger('alert-evaluator', config.LOG_LEVEL)
applyProcessNice(config.PROCESS_NICE, logger)
const evaluator = await startAlertEvaluator(config, logger)
const health = await startHealthServer(config.HEALTH_HOST, config.HEALTH_PORT, evaluator.ready, () =>
  exposition(evaluator.metrics.registry),
)
logger.info({ health: `http://${config.HEALTH_HOST}:${health.port}/health` }, 'alert-evaluator started')

closeWithGrace({ delay: 20_000 }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'shutting down after an error')
  else logger.info({ signal }, 'shutting down')
  await health.close()
  await evaluator.close()
  await tracing.shutdown()
})
