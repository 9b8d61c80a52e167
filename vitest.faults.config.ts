import { defineConfig } from 'vitest/config'

/**
 * `pnpm test:faults`: the fault-injection suite (test/faults), apart from `npm test` so that one test
 * file stays quick to run. Scenarios run one at a time: each loads the machine on its own.
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.faults.ts'],
    globalSetup: ['test/support/build-apps.global-setup.ts'],
    testTimeout: 15 * 60_000,
    hookTimeout: 120_000,
    maxWorkers: 1,
    fileParallelism: false,
    pool: 'forks',
  },
})
