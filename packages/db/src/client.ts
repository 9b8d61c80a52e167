import postgres from 'postgres'

export type Sql = postgres.Sql
export type TransactionSql = postgres.TransactionSql

export interface SqlOptions {
  max?: number
  /** Set false for short-lived tools so they do not hold connections. */
  idleTimeoutSeconds?: number
}

/** The one `sql` instance of a process. Notices are dropped: `IF NOT EXISTS` is chatty. */
export function createSql(url: string, options: SqlOptions = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    idle_timeout: options.idleTimeoutSeconds ?? 30,
    connect_timeout: 10,
    onnotice: () => {},
    types: { bigint: postgres.BigInt },
  })
}

/** Closes the pool, giving running queries `timeoutSeconds` to finish. */
export const closeSql = (sql: Sql, timeoutSeconds = 5) => sql.end({ timeout: timeoutSeconds })
