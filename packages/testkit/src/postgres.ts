import { closeSql, createSql, migrate, type Sql } from '@iotflow/db'
import postgres from 'postgres'
import { uniqueName } from './names.js'
import { serviceUrls } from './services.js'

export interface TestDatabase {
  url: string
  sql: Sql
  drop(): Promise<void>
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
      const adminUrl = new URL(serverUrl)
      adminUrl.pathname = '/postgres'
      const admin = postgres(adminUrl.toString(), { max: 1, onnotice: () => {} })
      try {
        await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
      } finally {
        await admin.end({ timeout: 5 })
      }
    },
  }
}
