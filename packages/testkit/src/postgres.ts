import { closeSql, createSql, migrate, type Sql } from '@iotflow/db'
import postgres from 'postgres'
import { uniqueName } from './names.js'
import { serviceUrls } from './services.js'

export interface TestDatabase {
  url: string
  sql: Sql
  drop(): Promise<void>
}

/** The server's maintenance database (`postgres`): there on every server, whatever else exists. */
export function maintenanceUrl(serverUrl = serviceUrls.postgres): string {
  const url = new URL(serverUrl)
  url.pathname = '/postgres'
  return url.toString()
}

/** A migrated database of its own for one test file, dropped afterwards (on the server of `serverUrl`). */
export async function createTestDatabase(serverUrl = serviceUrls.postgres): Promise<TestDatabase> {
  const name = uniqueName('iotflow_test')
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  await migrate(url.toString())
  const sql = createSql(url.toString(), { max: 4 })
  return {
    url: url.toString(),
    sql,
    async drop() {
      await closeSql(sql)
      const admin = postgres(maintenanceUrl(serverUrl), { max: 1, onnotice: () => {} })
      try {
        await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
      } finally {
        await admin.end({ timeout: 5 })
      }
    },
  }
}
