import { createTestDatabase, createTestInfluxDatabase } from '@iotflow/testkit'
import { afterAll, beforeAll } from 'vitest'
import { type Pipeline, startPipeline } from './pipeline.js'

export interface PipelineFixture {
  db: Awaited<ReturnType<typeof createTestDatabase>>
  influx: Awaited<ReturnType<typeof createTestInfluxDatabase>>
  pipeline: Pipeline
}

/**
 * For a test file: a database and an InfluxDB database of its own and the whole pipeline with both
 * writers, set up before its tests and torn down after. Read the fields inside the tests.
 */
export function usePipelineFixture(): PipelineFixture {
  const fixture = {} as PipelineFixture
  beforeAll(async () => {
    fixture.db = await createTestDatabase()
    fixture.influx = await createTestInfluxDatabase()
    fixture.pipeline = await startPipeline({ databaseUrl: fixture.db.url, influx: fixture.influx })
    await fixture.pipeline.startPostgresWriter()
    await fixture.pipeline.startInfluxWriter()
  })
  afterAll(async () => {
    await fixture.pipeline?.close()
    await fixture.influx?.drop()
    await fixture.db?.drop()
  })
  return fixture
}
