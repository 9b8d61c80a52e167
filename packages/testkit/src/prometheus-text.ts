import { spawn } from 'node:child_process'
import parsePrometheusTextFormat from 'parse-prometheus-text-format'

export type MetricFamily = ReturnType<typeof parsePrometheusTextFormat>[number]

/**
 * An app's metrics, read over HTTP and parsed by an independent Prometheus text-format parser.
 * That parser folds the series of a labelled histogram into one, so histogram and summary TYPE
 * lines are dropped before parsing: their `_bucket`, `_sum` and `_count` series then read as
 * plain series with their labels intact (`promtool` checks the types, see `lintExposition`).
 */
export class ScrapedMetrics {
  readonly families: Map<string, MetricFamily>

  constructor(readonly text: string) {
    const untypedHistograms = text.replace(/^# TYPE \S+ (?:histogram|summary)$/gm, '')
    this.families = new Map()
    // Untyped, a histogram's series come as alternating runs (`_bucket`, `_sum`, `_count` per label set).
    for (const family of parsePrometheusTextFormat(untypedHistograms)) {
      const known = this.families.get(family.name)
      if (known) known.metrics.push(...family.metrics)
      else this.families.set(family.name, family)
    }
  }

  static async from(url: string): Promise<ScrapedMetrics> {
    const response = await fetch(url)
    if (!response.ok) throw new Error(`GET ${url}: ${response.status}`)
    return new ScrapedMetrics(await response.text())
  }

  /** True when the family has samples (a histogram `h` has them as `h_count` and `h_bucket`). */
  has(name: string): boolean {
    return Boolean(
      this.families.get(name)?.metrics.length || this.families.get(`${name}_count`)?.metrics.length,
    )
  }

  /** The sum of every sample of `name` whose labels include `labels`; 0 when there is none. */
  value(name: string, labels: Record<string, string> = {}): number {
    return (this.families.get(name)?.metrics ?? [])
      .filter((sample) => Object.entries(labels).every(([key, value]) => sample.labels?.[key] === value))
      .reduce((sum, sample) => sum + Number(sample.value ?? 0), 0)
  }
}

export interface ExpositionLint {
  exitCode: number | null
  /** promtool's findings, one per line; a text it cannot parse gives exit code 1. */
  problems: string[]
}

/** Prometheus' own parser and linter (`promtool check metrics`) run over an exposition. */
export async function lintExposition(text: string): Promise<ExpositionLint> {
  const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk) => {
    output += chunk
  })
  child.stderr.on('data', (chunk) => {
    output += chunk
  })
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', resolve)
  })
  child.stdin.end(text)
  const exitCode = await exited
  return { exitCode, problems: output.split('\n').filter(Boolean) }
}
