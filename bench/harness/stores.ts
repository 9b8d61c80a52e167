import { queryV1 } from '@iotflow/influx'
import { createTestDatabase, createTestInfluxDatabase } from '@iotflow/testkit'
import type { Teardown } from './teardown.js'

/**
 * A field every point of the bench carries: InfluxDB counts points by counting one field. JSON
 * points name it `temperature`, line protocol points `environment.temperature`.
 */
export const COUNTED_FIELD = /(^|\.)temperature$/

/**
 * A scenario's own PostgreSQL database (migrated) and InfluxDB database on the shared servers,
 * dropped by the teardown: every point in them is one the scenario sent.
 */
export async function createBenchStores(teardown: Teardown) {
  const postgres = teardown.add('the PostgreSQL database', await createTestDatabase(), (db) => db.drop())
  const influx = teardown.add('the InfluxDB database', await createTestInfluxDatabase(), (db) => db.drop())
  return {
    postgres,
    influx,
    async countPostgres(): Promise<number> {
      const [row] = await postgres.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM telemetry`
      return row?.n ?? 0
    },
    async countInflux(): Promise<number> {
      const series = await queryV1(
        influx.url,
        influx.database,
        `SELECT count(/${COUNTED_FIELD.source}/) FROM telemetry`,
      )
      // A column per field the expression matches; a scenario's points carry one of them.
      const counts = (series[0]?.values[0] ?? []).slice(1).map(Number)
      return Math.max(0, ...counts.filter(Number.isFinite))
    },
  }
}

export type BenchStores = Awaited<ReturnType<typeof createBenchStores>>
