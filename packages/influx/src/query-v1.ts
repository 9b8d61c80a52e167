/** Minimal InfluxQL reader for InfluxDB 1.x (tests, verification tools). */
export interface InfluxSeries {
  name: string
  tags?: Record<string, string>
  columns: string[]
  values: unknown[][]
}

export async function queryV1(url: string, database: string, query: string): Promise<InfluxSeries[]> {
  const params = new URLSearchParams({ db: database, q: query, epoch: 'ms' })
  const response = await fetch(`${url}/query?${params}`)
  if (!response.ok) throw new Error(`InfluxDB query failed: ${response.status} ${await response.text()}`)
  const body = (await response.json()) as { results: { series?: InfluxSeries[]; error?: string }[] }
  const result = body.results[0]
  if (result?.error) throw new Error(`InfluxDB query failed: ${result.error}`)
  return result?.series ?? []
}

/** Rows of the first series as objects keyed by column name. */
export function seriesRows(series: InfluxSeries[]): Record<string, unknown>[] {
  return series.flatMap((s) =>
    (s.values ?? []).map((values) => ({
      ...s.tags,
      ...Object.fromEntries(s.columns.map((column, i) => [column, values[i]])),
    })),
  )
}
