import { loadConfigOrExit, loadWriterInfluxConfig } from '@iotflow/config'
import { exposition } from '@iotflow/metrics'
import { runProcess } from '@iotflow/runtime'
import { startTracing } from '@iotflow/tracing'
import { startInfluxWriter } from './writer.js'

await runProcess({
  name: 'writer-influx',
  tracing: await startTracing('iotflow-writer-influx'),
  config: () => loadConfigOrExit(loadWriterInfluxConfig),
  start: startInfluxWriter,
  metrics: (writer) => exposition(writer.metrics.registry),
  startedDetails: (config) => ({ api: config.INFLUX_API, influx: config.INFLUX_URL }),
})
