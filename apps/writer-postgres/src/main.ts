import { loadConfigOrExit, loadWriterPostgresConfig } from '@iotflow/config'
import { exposition } from '@iotflow/metrics'
import { runProcess } from '@iotflow/runtime'
import { startTracing } from '@iotflow/tracing'
import { startPostgresWriter } from './writer.js'

await runProcess({
  name: 'writer-postgres',
  tracing: await startTracing('iotflow-writer-postgres'),
  config: () => loadConfigOrExit(loadWriterPostgresConfig),
  start: startPostgresWriter,
  metrics: (writer) => exposition(writer.metrics.registry),
})
