import { execFile } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import postgres from 'postgres'
import { startPrivateServer } from './private-server.js'

const run = promisify(execFile)

/** The newest PostgreSQL server binaries of the Debian packages (the same ones infra/local uses). */
function postgresBinDir(): string {
  const versions = readdirSync('/usr/lib/postgresql')
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a))
  if (!versions[0])
    throw new Error('no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)')
  return `/usr/lib/postgresql/${versions[0]}/bin`
}

/** As root, the server must run as `postgres` (initdb and postgres refuse root). */
async function serverUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined
  const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])])
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) }
}

/**
 * A private PostgreSQL cluster (initdb into a temp dir) that a test may stop and start to play an
 * outage, without touching the shared server. Stopped with a fast shutdown (SIGINT), so that
 * connected clients are cut off as in a real restart. `settings` are server parameters given as
 * `-c name=value` (e.g. `shared_preload_libraries`, which the shared server must not be restarted for).
 */
export async function startPrivatePostgres(settings: Record<string, string> = {}) {
  const bin = postgresBinDir()
  const user = await serverUser()
  const server = await startPrivateServer({
    name: 'postgres',
    command: join(bin, 'postgres'),
    user,
    stopSignal: 'SIGINT',
    prepare: async (dir) => {
      await run(
        join(bin, 'initdb'),
        ['-D', join(dir, 'data'), '--auth=trust', '--username=postgres', '-E', 'UTF8'],
        {
          ...user,
        },
      )
    },
    args: (dir, port) => [
      '-D',
      join(dir, 'data'),
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      ...Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
    ],
    answers: async (port) => {
      const sql = postgres(`postgres://postgres@127.0.0.1:${port}/postgres`, {
        max: 1,
        connect_timeout: 2,
        onnotice: () => {},
      })
      try {
        await sql`SELECT 1`
        return true
      } finally {
        await sql.end({ timeout: 1 })
      }
    },
  })
  return { ...server, url: `postgres://postgres@127.0.0.1:${server.port}/iotflow` }
}
