import { loadAlertEvaluatorConfig, loadConfigOrExit } from '@iotflow/config'
import { exposition } from '@iotflow/metrics'
import { runProcess } from '@iotflow/runtime'
import { startTracing } from '@iotflow/tracing'
import { startAlertEvaluator } from './evaluator.js'

await runProcess({
  name: 'alert-evaluator',
  tracing: await startTracing('iotflow-alert-evaluator'),
  config: () => loadConfigOrExit(loadAlertEvaluatorConfig),
  start: startAlertEvaluator,
  metrics: (evaluator) => exposition(evaluator.metrics.registry),
})
