import type { Sql } from './client.js'

export interface AuditEntry {
  id: number
  at: string
  /** The credential used: an operator token (its id), or ADMIN_TOKEN (id null). */
  token: { id: number | null; name: string; role: 'read' | 'admin' }
  method: string
  route: string
  params: Record<string, unknown>
  status_code: number
  ip: string
}

export type NewAuditEntry = Omit<AuditEntry, 'id' | 'at'>

interface AuditRow {
  id: string
  at: Date
  token_id: string | null
  token_name: string
  role: 'read' | 'admin'
  method: string
  route: string
  params: Record<string, unknown>
  status_code: number
  ip: string
}

/** The audit log of operator changes: appended once per change, read newest first. */
export function createAuditRepository(sql: Sql) {
  return {
    async record(entry: NewAuditEntry): Promise<void> {
      await sql`
        INSERT INTO audit_log (token_id, token_name, role, method, route, params, status_code, ip)
        VALUES (${entry.token.id}, ${entry.token.name}, ${entry.token.role}, ${entry.method},
                ${entry.route}, ${sql.json(entry.params as Parameters<Sql['json']>[0])}, ${entry.status_code}, ${entry.ip})`
    },

    async list(options: { since?: Date; limit: number }): Promise<AuditEntry[]> {
      const rows = await sql<AuditRow[]>`
        SELECT id, at, token_id, token_name, role, method, route, params, status_code, ip FROM audit_log
        ${options.since ? sql`WHERE at >= ${options.since}` : sql``}
        ORDER BY at DESC, id DESC LIMIT ${options.limit}`
      return rows.map((row) => ({
        id: Number(row.id),
        at: row.at.toISOString(),
        token: {
          id: row.token_id === null ? null : Number(row.token_id),
          name: row.token_name,
          role: row.role,
        },
        method: row.method,
        route: row.route,
        params: row.params,
        status_code: row.status_code,
        ip: row.ip,
      }))
    },
  }
}

export type AuditRepository = ReturnType<typeof createAuditRepository>
