import { describe, expect, it } from 'vitest'
import { startTracing, tracingWantedBy } from './start-tracing.js'

describe('tracing is on only with an OTLP endpoint', () => {
  it.each([
    [{}, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: '' }, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }, true],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' }, true],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_SDK_DISABLED: 'true' }, false],
    [{ OTEL_TRACES_SAMPLER: 'always_on' }, false],
  ])('%j → %s', (env, on) => {
    expect(tracingWantedBy(env)).toBe(on)
  })

  it('off, startTracing loads nothing and shuts down at once', async () => {
    const tracing = await startTracing('iotflow-gateway', {})
    expect(tracing.enabled).toBe(false)
    await tracing.shutdown()
  })
})

describe('settings the SDK cannot honour are refused at start, naming the variable', () => {
  const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' }
  it.each([
    [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, /OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported/],
    [{ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/xml' }, /OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http\/xml/],
    [{ OTEL_TRACES_SAMPLER: 'sometimes' }, /OTEL_TRACES_SAMPLER=sometimes is not supported/],
    [
      { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' },
      /OTEL_TRACES_SAMPLER_ARG=1.5/,
    ],
    [
      { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: 'half' },
      /OTEL_TRACES_SAMPLER_ARG=half/,
    ],
  ])('%j', async (env, message) => {
    await expect(startTracing('iotflow-gateway', { ...endpoint, ...env })).rejects.toThrow(message)
  })
})
