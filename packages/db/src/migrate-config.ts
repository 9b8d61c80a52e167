import { parseEnv, postgresEnv } from '@iotflow/config'
import { Type } from '@sinclair/typebox'

const MigrateEnv = Type.Object({ DATABASE_URL: postgresEnv.DATABASE_URL })
export const loadMigrateConfig = (env: NodeJS.ProcessEnv = process.env) => parseEnv(MigrateEnv, env)
