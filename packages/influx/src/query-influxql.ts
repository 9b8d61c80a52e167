import type { InfluxTarget } from './write-client.js'

/**
 * Where InfluxQL is read: InfluxDB 1.x's `/query`, or 2.x's v1-compatible `/query`, where the
 * database is a bucket's DBRP mapping (every bucket has a virtual one under its own name) and the
 * credential is an API token.
 */
export interface InfluxQueryEndpoint {
  url: string
  database: string
  retentionPolicy?: string
  /** The Authorization header: Basic (1.x user) or Token (2.x). */
  authorization?: string
}

/** Minimal InfluxQL reader (tests, verification tools). */
export interface InfluxSeries {
  name: string
  tags?: Record<string, string>
  columns: string[]
  values: unknown[][]
}

/** How to read back what a writer configured with `target` writes. */
export function influxQueryEndpointOf(target: InfluxTarget): InfluxQueryEndpoint {
  if (target.api === 'v2') {
    return { url: target.url, database: target.bucket, authorization: `Token ${target.token}` }
  }
  return {
    url: target.url,
    database: target.database,
    ...(target.retentionPolicy && { retentionPolicy: target.retentionPolicy }),
    ...(target.username !== undefined && {
      authorization: `Basic ${Buffer.from(`${target.username}:${target.password ?? ''}`).toString('base64')}`,
    }),
  }
}

/** InfluxQL over `/query`; an error inside a 200 answer is thrown. */
export function queryInfluxQl(endpoint: InfluxQueryEndpoint, query: string): Promise<InfluxSeries[]> {
  return sendInfluxQl(endpoint, query, 'GET')
}

/**
 * An InfluxQL statement that changes something (`CREATE`, `DROP`: 1.x wants them POSTed); an error
 * inside a 200 answer is thrown.
 */
export function runInfluxQlStatement(
  endpoint: InfluxQueryEndpoint,
  statement: string,
): Promise<InfluxSeries[]> {
  return sendInfluxQl(endpoint, statement, 'POST')
}

async function sendInfluxQl(
  endpoint: InfluxQueryEndpoint,
  query: string,
  method: 'GET' | 'POST',
): Promise<InfluxSeries[]> {
  const params = new URLSearchParams({ db: endpoint.database, q: query, epoch: 'ms' })
  if (endpoint.retentionPolicy) params.set('rp', endpoint.retentionPolicy)
  const response = await fetch(`${endpoint.url}/query?${params}`, {
    method,
    headers: endpoint.authorization ? { authorization: endpoint.authorization } : {},
  })
  if (!response.ok) throw new Error(`InfluxDB query failed: ${response.status} ${await response.text()}`)
  const body = (await response.json()) as { results: { series?: InfluxSeries[]; error?: string }[] }
  const result = body.results[0]
  if (result?.error) throw new Error(`InfluxDB query failed: ${result.error}`)
  return result?.series ?? []
}

/** InfluxQL against an InfluxDB 1.x database with no authentication (tests, benchmarks). */
export function queryV1(url: string, database: string, query: string): Promise<InfluxSeries[]> {
  return queryInfluxQl({ url, database }, query)
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
