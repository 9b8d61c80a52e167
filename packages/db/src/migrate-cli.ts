import { ConfigError } from '@iotflow/config'
import { migrate } from './migrate.js'
import { loadMigrateConfig } from './migrate-config.js'

try {
  const { DATABASE_URL } = loadMigrateConfig()
  const report = await migrate(DATABASE_URL)
  const database = new URL(DATABASE_URL).pathname.slice(1)
  if (report.createdDatabase) console.log(`created database ${database}`)
  console.log(
    report.applied.length ? `applied ${report.applied.join(', ')}` : `database ${database} is up to date`,
  )
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error)
  process.exitCode = 1
}
