import { ConfigError, type GatewayConfig, loadGatewayConfig } from '@iotflow/config'
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'

let config: GatewayConfig
try {
  config = loadGatewayConfig()
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error)
  process.exit(1)
}

const app = await buildApp(config)

closeWithGrace({ delay: 20_000 }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'shutting down after an error')
  else app.log.info({ signal }, 'shutting down')
  await app.close()
})

await app.listen({ host: config.HOST, port: config.PORT })
