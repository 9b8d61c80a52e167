// `pnpm build`: each app as one ES module, `dist/<app>/main.js` (with its source map), which is what
// production runs: `node --enable-source-maps --max-old-space-size=1536 dist/<app>/main.js` (APP_NODE_FLAGS). No TypeScript loader at run time
// (tsx's loader thread alone is about 50 MB of every process's memory), and the app's own code and
// the workspace packages it uses in one file.
//
// Third-party packages are not bundled: each import is resolved where the workspace package that
// makes it would resolve it (pnpm keeps every package's dependencies apart) and kept as an import of
// that file. The bundle therefore points into this checkout's node_modules: build where it runs
// (`npm start`, the tests, the bench and the Docker image all do).
//
// The database migrations are copied to dist/migrations, where the bundled migrator looks for
// them (`../migrations/` from the bundle, as from packages/db/src in the sources).
import { cpSync, existsSync, renameSync, rmSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build, type Plugin } from 'esbuild'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
export const APPS = ['gateway', 'writer-postgres', 'writer-influx', 'mqtt-bridge', 'alert-evaluator'] as const
export type AppName = (typeof APPS)[number]

/**
 * Node's flags for every app, as production runs it (`node <flags> dist/<app>/main.js`). The heap
 * cap is what keeps memory flat: with V8's default cap (about 4 GB on a large machine) the old
 * generation may grow to four times its live size between full collections, and a busy gateway
 * reached 280 MB; under a cap below 2 GB, V8 grows it by at most twice, and the same gateway peaked
 * at 186 MB for about 5% more of its CPU (docs/benchmarks.md). 1.5 GB is far above any app's live
 * heap (tens of MB). The Dockerfile, infra/local/run-apps.mjs and each app's `start` script, which
 * cannot import this file, carry the same flags.
 */
export const APP_NODE_FLAGS = ['--enable-source-maps', '--max-old-space-size=1536'] as const

/** Bundles the workspace's own code; every other bare import stays an import, of the file it resolves to. */
const thirdPartyExternal: Plugin = {
  name: 'third-party-external',
  setup(builder) {
    builder.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (
        args.pluginData === 'resolving' ||
        args.path.startsWith('@iotflow/') ||
        args.path.startsWith('node:')
      ) {
        return undefined
      }
      const resolved = await builder.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: 'resolving',
      })
      if (resolved.errors.length > 0) return { errors: resolved.errors }
      return { path: resolved.path, external: true }
    })
  },
}

/** One entry point (relative to the repository) and what it imports of the workspace, as one file. */
export async function bundle(entry: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [join(ROOT, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: true,
    plugins: [thirdPartyExternal],
    logLevel: 'warning',
  })
}

/**
 * Builds every app into `outDir` (default: dist/ of the repository). The build is made beside it and
 * swapped in whole, so an app started meanwhile (another test run's) finds the old build or the new
 * one, never half of one.
 */
export async function buildApps(outDir = join(ROOT, 'dist')): Promise<string> {
  const fresh = `${outDir}.new-${process.pid}`
  const old = `${outDir}.old-${process.pid}`
  rmSync(fresh, { recursive: true, force: true })
  await Promise.all(APPS.map((app) => bundle(`apps/${app}/src/main.ts`, join(fresh, app, 'main.js'))))
  cpSync(join(ROOT, 'packages/db/migrations'), join(fresh, 'migrations'), { recursive: true })
  if (existsSync(outDir)) renameSync(outDir, old)
  renameSync(fresh, outDir)
  rmSync(old, { recursive: true, force: true })
  return outDir
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const started = Date.now()
  await buildApps()
  console.log(`built ${APPS.map((app) => `dist/${app}/main.js`).join(', ')} in ${Date.now() - started} ms`)
}
