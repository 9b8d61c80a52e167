import { closeSql, createSql, migrateWhenReachable, type Sql } from '@iotflow/db'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    sql: Sql
  }
}

export interface PostgresPluginOptions {
  databaseUrl: string
  poolSize: number
  migrateOnStart: boolean
}

/** The process's one `sql` pool; migrates first when asked to, ends the pool on close. */
export default fp(
  async (fastify: FastifyInstance, options: PostgresPluginOptions) => {
    if (options.migrateOnStart) await migrateWhenReachable(options.databaseUrl, fastify.log)
    const sql = createSql(options.databaseUrl, { max: options.poolSize })
    fastify.decorate('sql', sql)
    fastify.addHook('onClose', async () => closeSql(sql))
  },
  { name: 'postgres' },
)
