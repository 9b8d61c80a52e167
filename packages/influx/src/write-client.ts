import { HttpError, InfluxDB } from '@influxdata/influxdb-client'
import { isConnectionError } from '@iotflow/runtime'

export type InfluxTarget =
  | { api: 'v2'; url: string; token: string; org: string; bucket: string; timeoutMs?: number }
  | {
      api: 'v1'
      url: string
      database: string
      retentionPolicy?: string
      username?: string
      password?: string
      timeoutMs?: number
    }

export interface InfluxWriteClient {
  /** Writes line protocol (ms precision) in one request; rejects with the server's answer. */
  write(lines: string[]): Promise<void>
  /** v1: creates the database if missing (idempotent). v2: checks the server answers. */
  prepare(): Promise<void>
  /**
   * Makes InfluxDB expire data after `days` (0 = never), to match PostgreSQL's retention. v1: alters
   * the retention policy written to (the database's default unless one is configured); v2: the
   * bucket's retention rule.
   */
  setRetention(days: number): Promise<void>
}

/** One code path for both APIs: the client library's transport, pointed at /api/v2/write or /write. */
export function createInfluxWriteClient(target: InfluxTarget): InfluxWriteClient {
  const influx = new InfluxDB({
    url: target.url,
    token: target.api === 'v2' ? target.token : undefined,
    timeout: target.timeoutMs ?? 10_000,
  })
  const transport = influx.transport
  const writePath = target.api === 'v2' ? v2WritePath(target) : v1Path('/write', target, { precision: 'ms' })
  const textBody = { method: 'POST', headers: { 'content-type': 'text/plain; charset=utf-8' } }

  return {
    async write(lines) {
      if (lines.length === 0) return
      await transport.request(writePath, lines.join('\n'), textBody)
    },
    async prepare() {
      if (target.api === 'v2') {
        await transport.request('/health', '', { method: 'GET' })
        return
      }
      await influxQl(`CREATE DATABASE ${quoteInfluxIdentifier(target.database)}`, 'POST')
    },
    async setRetention(days) {
      if (target.api === 'v2') {
        const params = new URLSearchParams({ org: target.org, name: target.bucket })
        const found = (await transport.request(`/api/v2/buckets?${params}`, '', { method: 'GET' })) as {
          buckets?: { id: string }[]
        }
        const bucket = found.buckets?.[0]
        if (!bucket) throw new Error(`InfluxDB has no bucket ${target.bucket} in org ${target.org}`)
        const retentionRules = days > 0 ? [{ type: 'expire', everySeconds: days * 86_400 }] : []
        await transport.request(`/api/v2/buckets/${bucket.id}`, JSON.stringify({ retentionRules }), {
          method: 'PATCH',
          headers: { 'content-type': 'application/json' },
        })
        return
      }
      const policy = target.retentionPolicy ?? (await defaultPolicy())
      // The shard duration must be shorter than the retention; InfluxDB's own defaults for each span.
      const duration =
        days > 0 ? `${days}d SHARD DURATION ${days < 2 ? '1h' : days <= 180 ? '1d' : '7d'}` : 'INF'
      await influxQl(
        `ALTER RETENTION POLICY ${quoteInfluxIdentifier(policy)} ON ${quoteInfluxIdentifier(target.database)} DURATION ${duration}`,
        'POST',
      )
    },
  }

  /** InfluxQL over /query (v1); an error inside a 200 answer is thrown. */
  async function influxQl(q: string, method: 'GET' | 'POST') {
    const v1 = target as Extract<InfluxTarget, { api: 'v1' }>
    const answer = (await transport.request(v1Path('/query', v1, { q }), '', { method })) as {
      results: { error?: string; series?: { columns: string[]; values: unknown[][] }[] }[]
    }
    const failed = answer.results.find((result) => result.error)
    if (failed) throw new Error(`InfluxDB refused ${q}: ${failed.error}`)
    return answer
  }

  async function defaultPolicy(): Promise<string> {
    const v1 = target as Extract<InfluxTarget, { api: 'v1' }>
    const answer = await influxQl(`SHOW RETENTION POLICIES ON ${quoteInfluxIdentifier(v1.database)}`, 'GET')
    const series = answer.results[0]?.series?.[0]
    const nameAt = series?.columns.indexOf('name') ?? -1
    const defaultAt = series?.columns.indexOf('default') ?? -1
    const row = series?.values.find((values) => values[defaultAt] === true)
    if (!row) throw new Error(`InfluxDB database ${v1.database} has no default retention policy`)
    return String(row[nameAt])
  }
}

/** An InfluxQL identifier (database, retention policy) in double quotes, escaped. */
export const quoteInfluxIdentifier = (identifier: string) =>
  `"${identifier.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`

function v2WritePath(target: Extract<InfluxTarget, { api: 'v2' }>): string {
  const params = new URLSearchParams({ org: target.org, bucket: target.bucket, precision: 'ms' })
  return `/api/v2/write?${params}`
}

function v1Path(path: string, target: Extract<InfluxTarget, { api: 'v1' }>, extra: Record<string, string>) {
  const params = new URLSearchParams({ db: target.database, ...extra })
  if (target.retentionPolicy) params.set('rp', target.retentionPolicy)
  if (target.username) params.set('u', target.username)
  if (target.password) params.set('p', target.password)
  return `${path}?${params}`
}

export type InfluxFailure = 'refused' | 'unavailable' | 'transient'

/**
 * `refused`: the server rejected this data (400: type conflict, bad line) and always will.
 * `unavailable`: down, unreachable, misconfigured credentials or database; retry when it returns.
 * `transient`: a 5xx or anything unknown.
 */
export function classifyInfluxError(error: unknown): InfluxFailure {
  if (error instanceof HttpError) {
    if (error.statusCode === 400 || error.statusCode === 422) return 'refused'
    if ([401, 403, 404, 429, 503].includes(error.statusCode)) return 'unavailable'
    return 'transient'
  }
  const name = (error as { name?: string }).name
  if (name === 'RequestTimedOutError' || name === 'AbortError') return 'unavailable'
  if (isConnectionError(error)) return 'unavailable'
  return 'transient'
}
