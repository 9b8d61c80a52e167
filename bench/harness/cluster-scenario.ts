import type { ScenarioResult } from './context.js'
import type { HttpScenario } from './http-scenarios.js'
import type { Alternation } from './outside-report.js'

/** Scenario 10's runs on the single Redis, and on the cluster. */
export const ON_SINGLE_REDIS = '10.0'
export const ON_CLUSTER = '10'

/** Issue 14: on 2 shared cores no gain is possible; the cost of partitioning must be small. */
export const CLUSTER_GOAL = 0.9

/**
 * Scenario 10's run `id` of scenario 1 (`batches`): the same load, named for where it queues, so
 * that its devices, files and profiles are apart from scenario 1's.
 */
export function clusterRun(
  batches: HttpScenario,
  id: typeof ON_SINGLE_REDIS | typeof ON_CLUSTER,
  redisName: string,
): HttpScenario {
  return { ...batches, id, title: `Scenario 1 on ${id === ON_CLUSTER ? 'a ' : 'the '}${redisName}` }
}

/** Scenario 10's A/B/B/A: the cluster's sum of stored points/s over the single Redis's. */
export const CLUSTER_AGAINST_SINGLE: Alternation = {
  heading:
    '10. Scenario 1 on a Redis Cluster against a single Redis, A/B/B/A (HTTP, 50 clients, 1,000-point batches)',
  sideOf: (run: ScenarioResult) => (run.id === ON_CLUSTER ? 'Redis Cluster' : 'single Redis'),
  numerator: 'Redis Cluster',
  denominator: 'single Redis',
  goal: `at least ${CLUSTER_GOAL}×`,
}
