import { HttpError, InfluxDB } from '@influxdata/influxdb-client'

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
      const create = `CREATE DATABASE "${target.database.replace(/"/g, '\\"')}"`
      await transport.request(v1Path('/query', target, { q: create }), '', { method: 'POST' })
    },
  }
}

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
  const code = (error as { code?: string }).code
  const name = (error as { name?: string }).name
  if (name === 'RequestTimedOutError' || name === 'AbortError') return 'unavailable'
  if (code && /^(ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENOTFOUND|ETIMEDOUT|EPIPE|EAI_AGAIN)$/.test(code)) {
    return 'unavailable'
  }
  return 'transient'
}
