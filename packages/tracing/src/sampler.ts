import { type Attributes, type Context, type Link, type SpanKind, TraceFlags } from '@opentelemetry/api'
import type * as Node from '@opentelemetry/sdk-trace-node'

type SdkModule = typeof Node

/**
 * The sampler OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG name (default parentbased_always_on),
 * made to keep every span linked to a sampled span: a writer's batch write is a root span whose
 * requests are links, and with a ratio sampler alone it would be kept at random, breaking the
 * trace of most sampled requests.
 */
export function samplerFrom(sdk: SdkModule, env: NodeJS.ProcessEnv): Node.Sampler {
  return new KeepLinkedToSampled(sdk, configured(sdk, env))
}

function configured(sdk: SdkModule, env: NodeJS.ProcessEnv): Node.Sampler {
  const name = env.OTEL_TRACES_SAMPLER?.trim() || 'parentbased_always_on'
  const ratio = () => {
    const text = env.OTEL_TRACES_SAMPLER_ARG?.trim() ?? '1'
    const value = Number(text)
    if (text === '' || !Number.isFinite(value) || value < 0 || value > 1) {
      throw new Error(`OTEL_TRACES_SAMPLER_ARG=${text} is not a ratio between 0 and 1`)
    }
    return new sdk.TraceIdRatioBasedSampler(value)
  }
  switch (name) {
    case 'always_on':
      return new sdk.AlwaysOnSampler()
    case 'always_off':
      return new sdk.AlwaysOffSampler()
    case 'traceidratio':
      return ratio()
    case 'parentbased_always_on':
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() })
    case 'parentbased_always_off':
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() })
    case 'parentbased_traceidratio':
      return new sdk.ParentBasedSampler({ root: ratio() })
    default:
      throw new Error(
        `OTEL_TRACES_SAMPLER=${name} is not supported; use always_on, always_off, traceidratio, ` +
          'parentbased_always_on, parentbased_always_off or parentbased_traceidratio',
      )
  }
}

class KeepLinkedToSampled implements Node.Sampler {
  constructor(
    private readonly sdk: SdkModule,
    private readonly inner: Node.Sampler,
  ) {}

  shouldSample(
    context: Context,
    traceId: string,
    spanName: string,
    spanKind: SpanKind,
    attributes: Attributes,
    links: Link[],
  ): Node.SamplingResult {
    for (const link of links) {
      if (link.context.traceFlags & TraceFlags.SAMPLED) {
        return { decision: this.sdk.SamplingDecision.RECORD_AND_SAMPLED }
      }
    }
    return this.inner.shouldSample(context, traceId, spanName, spanKind, attributes, links)
  }

  toString(): string {
    return `KeepLinkedToSampled{${this.inner.toString()}}`
  }
}
