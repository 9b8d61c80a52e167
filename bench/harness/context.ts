import type { BenchRedis } from './bench-redis.js'
import type { Measurement } from './measure.js'
import type { Teardown } from './teardown.js'

/** What every scenario shares: the bench's teardown, its private Redis, the run's settings. */
export interface BenchContext {
  teardown: Teardown
  /** The bench's single Redis, or for scenario 10's cluster runs the cluster. */
  redis: BenchRedis
  seconds: number
  /** A directory of the run's own (devices files), removed at the end. */
  workDir: string
  /** Every device's first timestamp; each request or message takes the next ones. */
  firstTimestampMs: number
  /** When set, every app (and the yardstick) writes a CPU profile under it: <dir>/<scenario>/<app>/. */
  cpuProfileDir?: string
}

/** Node arguments that make a process write a CPU profile when it exits, if the run asked for them. */
export function cpuProfileArgs(context: BenchContext, scenario: string, app: string): string[] {
  if (!context.cpuProfileDir) return []
  return ['--cpu-prof', `--cpu-prof-dir=${context.cpuProfileDir}/scenario-${scenario}/${app}`]
}

export type SystemUnderTest = 'IoTFlow' | 'yardstick'

export interface ScenarioResult {
  /**
   * '1' … '4'; the yardstick's runs of scenarios 1 and 2 are '5.1' and '5.2'; scenario 10's runs
   * on the single Redis '10.0', on the cluster '10'.
   */
  id: string
  title: string
  system: SystemUnderTest
  /** What one request or message is: an HTTP request or an MQTT message. */
  unit: 'request' | 'message'
  measurement: Measurement
}
