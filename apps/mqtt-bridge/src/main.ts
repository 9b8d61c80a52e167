import { loadConfigOrExit, loadMqttBridgeConfig } from '@iotflow/config'
import { exposition } from '@iotflow/metrics'
import { runProcess } from '@iotflow/runtime'
import { startTracing } from '@iotflow/tracing'
import { startMqttBridge } from './bridge.js'

await runProcess({
  name: 'mqtt-bridge',
  tracing: await startTracing('iotflow-mqtt-bridge'),
  config: () => loadConfigOrExit(loadMqttBridgeConfig),
  start: startMqttBridge,
  metrics: (bridge) => exposition(bridge.metrics.registry),
})
