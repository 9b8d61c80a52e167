import { loadConfigOrExit, loadGatewayConfig } from '@iotflow/config'
import { applyProcessNice } from '@iotflow/runtime'
import { startTracing } from '@iotflow/tracing'
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'

const tracing = await startTracing('iotflow-gateway')
const config = loadConfigOrExit(loadGatewayConfig)

const app = await buildApp(config)
applyProcessNice(config.PROCESS_NICE, app.log)

closeWithGrace({ delay: 20_000 }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'shutting down after an error')
  else app.log.info({ signal }, 'shutting down')
  await app.close()
  await tracing.shutdown()
})

await app.listen({ host: config.HOST, port: config.PORT })
