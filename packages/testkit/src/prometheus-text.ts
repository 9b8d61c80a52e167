import parsePrometheusTextFormat from 'parse-prometheus-text-format'

export type MetricFamily = ReturnType<typeof parsePrometheusTextFormat>[number]

/** An app's metrics, read over HTTP and parsed by an independent Prometheus text-format parser. */
export class ScrapedMetrics {
  readonly families: Map<string, MetricFamily>

  constructor(text: string) {
    this.families = new Map(parsePrometheusTextFormat(text).map((family) => [family.name, family]))
  }

  static async from(url: string): Promise<ScrapedMetrics> {
    const response = await fetch(url)
    if (!response.ok) throw new Error(`GET ${url}: ${response.status}`)
    return new ScrapedMetrics(await response.text())
  }

  has(name: string): boolean {
    return this.families.has(name)
  }

  /**
   * The value of a counter or gauge, or the observation count of a histogram, summed over every
   * series whose labels include `labels`; 0 when there is none.
   */
  value(name: string, labels: Record<string, string> = {}): number {
    const family = this.families.get(name)
    if (!family) return 0
    return family.metrics
      .filter((sample) => Object.entries(labels).every(([key, value]) => sample.labels?.[key] === value))
      .reduce((sum, sample) => sum + Number(sample.value ?? sample.count ?? 0), 0)
  }
}
