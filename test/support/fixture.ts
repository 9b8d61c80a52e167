import { createTestDatabase, createTestInfluxDatabase, type TestDatabase } from '@iotflow/testkit'
import { afterAll, beforeAll } from 'vitest'
import { type Pipeline, startPipeline } from './pipeline.js'

export interface PipelineFixture {
  db: TestDatabase
  influx: Awaited<ReturnType<typeof createTestInfluxDatabase>>
  pipeline: Pipeline
}

/**
 * For a test file: the whole pipeline, on a database, an InfluxDB database and a queue prefix of its
 * own, started before the tests and torn down after them. Both writers run unless `writers: false`
 * (the test starts them itself); `env` adds to the apps' environment. Read its fields inside tests (they are set by beforeAll).
 */
export function usePipelineFixture(
  options: { writers: boolean; env?: Record<string, string> } = { writers: true },
): PipelineFixture {
  const fixture = {} as PipelineFixture
  beforeAll(async () => {
    fixture.db = await createTestDatabase()
    fixture.influx = await createTestInfluxDatabase()
    fixture.pipeline = await startPipeline({
      databaseUrl: fixture.db.url,
      influx: fixture.influx,
      env: options.env,
    })
    if (options.writers) {
      await fixture.pipeline.startPostgresWriter()
      await fixture.pipeline.startInfluxWriter()
    }
  })
  afterAll(async () => {
    await fixture.pipeline?.close()
    await fixture.influx?.drop()
    await fixture.db?.drop()
  })
  return fixture
}
