import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'apps/*/src/**/*.test.ts',
      'apps/*/test/**/*.test.ts',
      'test/**/*.test.ts',
    ],
    // The apps that tests start as processes run from dist/, built here first (pnpm build).
    globalSetup: ['test/support/build-apps.global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: two test files at a time. Each file has its own database and queue prefix.
    maxWorkers: 2,
    pool: 'forks',
  },
})
