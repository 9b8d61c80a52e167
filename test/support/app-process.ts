import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'

export type AppName = 'gateway' | 'writer-postgres' | 'writer-influx'

export interface AppProcess {
  name: AppName
  /** Resolves when the process has exited, with how. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  running(): boolean
  /** Sends the signal and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** The last lines the app printed (for a failing test's message). */
  output(): string
}

const KEPT_LINES = 200

/**
 * Runs an app as production does, in a process of its own (`node --import tsx apps/<app>/src/main.ts`),
 * so a test can SIGKILL it mid-batch. The environment given is added to this process's.
 */
export function spawnApp(name: AppName, env: Record<string, string>): AppProcess {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', `apps/${name}/src/main.ts`], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: string[] = []
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue
    createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
      lines.push(line)
      if (lines.length > KEPT_LINES) lines.shift()
    })
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  return {
    name,
    exited,
    running: () => child.exitCode === null && child.signalCode === null,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
    output: () => lines.join('\n'),
  }
}
