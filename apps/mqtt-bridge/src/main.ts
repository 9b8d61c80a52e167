import { loadConfigOrExit, loadMqttBridgeConfig } from '@iotflow/config'
import { runProcess } from '@iotflow/runtime'
import { startTracing } from '@iotflow/tracing'
import { startMqttBridge } from './bridge.js'

await runProcess({
  name: 'mqtt-bridge',
  tracing: await startTracing('iotflow-mqtt-bridge'),
  config: () => loadConfigOrExit(loadMqttBridgeConfig),
  start: startMqttBridge,
  metrics: async (bridge) => ({
    contentType: 'text/plain; version=0.0.4; charset=utf-8',
    body: await bridge.renderMetrics(),
  }),
})
