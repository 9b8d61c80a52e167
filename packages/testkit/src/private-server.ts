import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitFor } from './wait-for.js'

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

export interface PrivateServerSpec {
  name: string
  command: string
  /** Arguments and environment, given the server's data directory and its two free ports. */
  args: (dir: string, port: number, extraPort: number) => string[]
  env?: (dir: string, port: number, extraPort: number) => Record<string, string>
  /** True once the server on `port` answers. */
  answers: (port: number) => Promise<boolean>
}

export interface PrivateServer {
  port: number
  start(): Promise<void>
  /** Stops the process (SIGTERM), keeping its data. */
  stop(): Promise<void>
  /** Stops it and removes its data. */
  dispose(): Promise<void>
}

/**
 * A service of a test's own, on free loopback ports with its data in a temp directory, that the
 * test may stop and start to play an outage. The shared services are never touched.
 */
export async function startPrivateServer(spec: PrivateServerSpec): Promise<PrivateServer> {
  const dir = await mkdtemp(join(tmpdir(), `iotflow-${spec.name}-`))
  const [port, extraPort] = [await freePort(), await freePort()]
  let child: ChildProcess | undefined

  const server: PrivateServer = {
    port,
    async start() {
      child = spawn(spec.command, spec.args(dir, port, extraPort), {
        env: { ...process.env, ...spec.env?.(dir, port, extraPort) },
        stdio: 'ignore',
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
    async stop() {
      const running = child
      child = undefined
      if (!running || running.exitCode !== null) return
      const exited = new Promise((resolve) => running.once('exit', resolve))
      running.kill('SIGTERM')
      await exited
    },
    async dispose() {
      await server.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
  await server.start()
  return server
}
