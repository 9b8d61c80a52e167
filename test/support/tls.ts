import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

const ROOT_DIR = join(import.meta.dirname, '../..')
const run = promisify(execFile)

/** Runs the shipped infra/tls/certs.sh: the certificates of a test come from the script users run. */
export async function certs(...args: string[]) {
  await run('bash', [join(ROOT_DIR, 'infra/tls/certs.sh'), ...args])
}

/**
 * The settings of a shipped Mosquitto config's TLS listener (infra/mosquitto/<file>), with the
 * container's paths pointed at the test's certificates and the repository's ACL: what a test's
 * private broker adds under its own `listener` line, so the shipped settings are the ones tested.
 */
export function shippedListenerSettings(file: string, certificateDir: string): string[] {
  const lines = readFileSync(join(ROOT_DIR, 'infra/mosquitto', file), 'utf8').split('\n')
  const start = lines.findIndex((line) => line.startsWith('listener '))
  const end = lines.indexOf('', start)
  return lines
    .slice(start + 1, end)
    .map((line) =>
      line
        .replace('/mosquitto/config/tls/', `${certificateDir}/`)
        .replace('/mosquitto/config/acl.conf', join(ROOT_DIR, 'infra/mosquitto/acl.conf')),
    )
}

export interface CurlResult {
  /** curl's exit code: 0, or why it failed (60: the certificate could not be verified). */
  code: number
  /** The HTTP status, when there was an answer. */
  status: number
  stderr: string
}

/** Runs the real curl; `args` come before the URL (e.g. `--cacert`, `-H`, `-d`). */
export async function curl(url: string, args: string[] = []): Promise<CurlResult> {
  try {
    const { stdout, stderr } = await run('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      ...args,
      url,
    ])
    return { code: 0, status: Number(stdout), stderr }
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string }
    return { code: failed.code, status: Number(failed.stdout) || 0, stderr: failed.stderr }
  }
}
