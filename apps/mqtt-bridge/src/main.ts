import { loadConfigOrExit, loadMqttBridgeConfig } from '@iotflow/config'
import { applyProcessNice, createLogger, startHealthServer } from '@iotflow/runtime'
import { startTracing } from '@iotflow/tracing'
import closeWithGrace from 'close-with-grace'
import { startMqttBridge } from './bridge.js'

const tracing = await startTracing('iotflow-mqtt-bridge')
const config = loadConfigOrExit(loadMqttBridgeConfig)

const logger = createLogger('mqtt-bridge', config.LOG_LEVEL)
applyProcessNice(config.PROCESS_NICE, logger)
const bridge = await startMqttBridge(config, logger)
const health = await startHealthServer(config.HEALTH_HOST, config.HEALTH_PORT, bridge.ready, async () => ({
  contentType: 'text/plain; version=0.0.4; charset=utf-8',
  body: await bridge.renderMetrics(),
}))
logger.info({ health: `http://${config.HEALTH_HOST}:${health.port}/health` }, 'mqtt-bridge started')

closeWithGrace({ delay: 20_000 }, async ({ signal, err }) => {
  if (err) logger.error({ err }, 'shutting down after an error')
  else logger.info({ signal }, 'shutting down')
  await health.close()
  await bridge.close()
  await tracing.shutdown()
})
