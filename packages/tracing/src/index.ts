export { withChildSpan } from './child-span.js'
export { runInSpan } from './run-in-span.js'
export {
  type IotflowServiceName,
  startTracing,
  type Tracing,
  tracingEnabled,
  tracingWantedBy,
} from './start-tracing.js'
export { storeCallAttributes } from './store-call-attributes.js'
export { linkFromTraceparent, traceparentOf } from './traceparent.js'
export { spanAttributes, tracer } from './tracer.js'
