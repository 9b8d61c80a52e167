import { type ChildProcess, spawn } from 'node:child_process'
import { chown, link, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitFor } from './wait-for.js'

/**
 * A port between 20000 and 32000 (below Linux's ephemeral range) that nothing listens on and that
 * no other live test process has taken: each port handed out is reserved by a file naming this
 * process (`<tmpdir>/iotflow-ports/<port>`), so that two test files running at once never pick the
 * same port before either server has bound it. A reservation whose process is gone is taken over.
 * Without it, a server that lost the race failed to bind while its test talked to the other one.
 */
export async function freePort(): Promise<number> {
  await mkdir(PORT_RESERVATIONS, { recursive: true })
  for (let attempt = 0; ; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000)
    if ((await reserve(port)) && (await canListen(port))) return port
    if (attempt > 200) throw new Error('no free port between 20000 and 32000')
  }
}

const PORT_RESERVATIONS = join(tmpdir(), 'iotflow-ports')

/** Reserves `port` for this process; false when a live process holds it (this one included). */
async function reserve(port: number): Promise<boolean> {
  const file = join(PORT_RESERVATIONS, String(port))
  if (await claim(file)) return true
  const holder = Number(await readFile(file, 'utf8').catch(() => ''))
  if (holder > 0 && isAlive(holder)) return false
  // The process that reserved it is gone: take it over, unless another process just did.
  await rm(file, { force: true })
  return claim(file)
}

/**
 * Creates the reservation `file` holding this process's pid, or false when it exists. Written aside
 * and linked into place, so the file never exists empty: a reader that found it empty took the
 * reservation for a dead process's and took it over, and two callers held one port.
 */
async function claim(file: string): Promise<boolean> {
  const written = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`
  await writeFile(written, String(process.pid))
  try {
    await link(written, file)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    return false
  } finally {
    await rm(written, { force: true })
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** How long a stopping server may take before it is killed. */
const STOP_GRACE_MS = 15_000

export interface PrivateServerSpec {
  name: string
  command: string
  /** Arguments and environment, given the server's data directory and its two free ports. */
  args: (dir: string, port: number, extraPort: number) => string[]
  env?: (dir: string, port: number, extraPort: number) => Record<string, string>
  /** True once the server on `port` answers. */
  answers: (port: number) => Promise<boolean>
  /** Runs once, before the first start (e.g. initdb). */
  prepare?: (dir: string) => Promise<void>
  /** The user the server runs as (PostgreSQL refuses to run as root). */
  user?: { uid: number; gid: number }
  /** The signal of a clean stop; SIGTERM unless the server wants another (PostgreSQL: SIGINT). */
  stopSignal?: NodeJS.Signals
}

export interface PrivateServer {
  port: number
  /** The second port given to `args` and `env` (e.g. influxd's RPC address). */
  extraPort: number
  /** The running server's process id (for /proc readings), undefined while stopped. */
  pid(): number | undefined
  start(): Promise<void>
  /** Stops the process cleanly, or with the signal given (SIGKILL: a crash), keeping its data. */
  stop(signal?: NodeJS.Signals): Promise<void>
  /** Stops it and removes its data. */
  dispose(): Promise<void>
}

/**
 * A service of a test's own, on free loopback ports with its data in a temp directory, that the
 * test may stop and start to play an outage. The shared services are never touched.
 */
export async function startPrivateServer(spec: PrivateServerSpec): Promise<PrivateServer> {
  const dir = await mkdtemp(join(tmpdir(), `iotflow-${spec.name}-`))
  if (spec.user) await chown(dir, spec.user.uid, spec.user.gid)
  await spec.prepare?.(dir)
  const [port, extraPort] = [await freePort(), await freePort()]
  let child: ChildProcess | undefined

  const server: PrivateServer = {
    port,
    extraPort,
    pid: () => (child && child.exitCode === null && child.signalCode === null ? child.pid : undefined),
    async start() {
      // Already running: starting again would spawn a second server that fails on the port and
      // leave this one orphaned, never stopped.
      if (child && child.exitCode === null && child.signalCode === null) return
      child = spawn(spec.command, spec.args(dir, port, extraPort), {
        env: { ...process.env, ...spec.env?.(dir, port, extraPort) },
        stdio: 'ignore',
        ...spec.user,
      })
      const started = child
      await waitFor(
        async () => {
          if (started.exitCode !== null) throw new Error(`${spec.name} exited with ${started.exitCode}`)
          return spec.answers(port).catch(() => false)
        },
        { timeoutMs: 30_000, what: `${spec.name} on port ${port}` },
      )
    },
    async stop(signal = spec.stopSignal ?? 'SIGTERM') {
      const running = child
      child = undefined
      if (!running || running.exitCode !== null || running.signalCode !== null) return
      const exited = new Promise((resolve) => running.once('exit', resolve))
      running.kill(signal)
      // A server that does not stop in time (a Redis primary waits for its replicas) is killed, so
      // a stop never hangs a test's teardown nor leaves a server running after it.
      const kill = setTimeout(() => running.kill('SIGKILL'), STOP_GRACE_MS)
      await exited
      clearTimeout(kill)
    },
    async dispose() {
      await server.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
  await server.start()
  return server
}
