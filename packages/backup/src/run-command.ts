import { spawn } from 'node:child_process'

/** A program to run: its arguments and the environment it adds (credentials go here, never in args). */
export interface Command {
  command: string
  args: string[]
  env?: Record<string, string>
}

/** Lines of a failed program's output kept for its error: the end says what went wrong. */
const OUTPUT_TAIL_LINES = 20

/**
 * Runs a program to its end; resolves with its output (stdout, then stderr), rejects naming the
 * program, its exit status and the end of its output. A program not installed is said so.
 */
export function runCommand({ command, args, env }: Command): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    const chunks: Buffer[] = []
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk))
    child.on('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'ENOENT' ? new Error(`${command} is not installed (not found on PATH)`) : error),
    )
    child.on('close', (code, signal) => {
      const output = Buffer.concat(chunks).toString('utf8')
      if (code === 0) return resolve(output)
      const tail = output.trimEnd().split('\n').slice(-OUTPUT_TAIL_LINES).join('\n')
      reject(new Error(`${command} ${args[0] ?? ''} failed (${signal ?? `exit ${code}`}):\n${tail}`))
    })
  })
}
