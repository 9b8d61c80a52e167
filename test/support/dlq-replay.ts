import { spawnSync } from 'node:child_process'

/** Runs `pnpm dlq:replay` (its script) on the queues of `queuePrefix`, as an operator would. */
export function dlqReplay(queuePrefix: string, ...args: string[]) {
  const result = spawnSync(
    'node',
    ['--import', 'tsx', 'packages/queue/src/dead-letters/dlq-replay-cli.ts', ...args],
    {
      env: { ...process.env, QUEUE_PREFIX: queuePrefix },
      encoding: 'utf8',
      timeout: 60_000,
    },
  )
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}
