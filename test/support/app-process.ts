import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { APP_NODE_FLAGS, type AppName } from '../../infra/build/build-apps.js'

export type { AppName }

export interface NodeProcess<Name extends string = string> {
  name: Name
  /** The node process itself (for /proc readings: memory, CPU time). */
  pid: number
  /** Resolves when the process has exited, with how. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  running(): boolean
  /** Sends the signal and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** The last lines the app printed (for a failing test's message). */
  output(): string
}

export type AppProcess = NodeProcess<AppName>

const KEPT_LINES = 200

/**
 * Runs an app as production does, in a process of its own (`node <APP_NODE_FLAGS>
 * dist/<app>/main.js`, built by `pnpm build`; vitest's global setup and the bench build it first), so
 * a test can SIGKILL it mid-batch. The environment given is added to this process's.
 */
export function spawnApp(name: AppName, env: Record<string, string>, nodeArgs: string[] = []): AppProcess {
  return spawnNode(name, `dist/${name}/main.js`, env, { nodeArgs: [...APP_NODE_FLAGS, ...nodeArgs] })
}

/**
 * Runs an entry point (relative to the repository; TypeScript through tsx) in a node process of its
 * own, with `args` (and `nodeArgs` for node itself); `onLine` hears each line it prints.
 */
export function spawnNode<Name extends string>(
  name: Name,
  entry: string,
  env: Record<string, string>,
  options: { args?: string[]; nodeArgs?: string[]; onLine?: (line: string) => void } = {},
): NodeProcess<Name> {
  const loader = entry.endsWith('.ts') ? ['--import', 'tsx'] : []
  const argv = [...(options.nodeArgs ?? []), ...loader, entry, ...(options.args ?? [])]
  const child: ChildProcess = spawn(process.execPath, argv, {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: string[] = []
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue
    createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
      lines.push(line)
      options.onLine?.(line)
      if (lines.length > KEPT_LINES) lines.shift()
    })
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
  })
  if (child.pid === undefined) throw new Error(`${name}: could not start node`)
  return {
    name,
    pid: child.pid,
    exited,
    running: () => child.exitCode === null && child.signalCode === null,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
    output: () => lines.join('\n'),
  }
}
