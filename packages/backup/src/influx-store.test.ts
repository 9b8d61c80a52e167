import { execFileSync } from 'node:child_process'
import { mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadBackupConfig } from '@iotflow/config'
import { describe, expect, it } from 'vitest'
import { checkInfluxServerAndTool, influxBackupTargetOf } from './influx-store.js'

// The 2.x commands cannot run here (no InfluxDB 2 server nor its `influx` CLI): their arguments are
// checked against the CLI's documented flags, and the token must stay off the command line.
describe('the InfluxDB backup and restore commands', () => {
  it('1.x: influxd backup/restore -portable of INFLUX_DATABASE over the RPC address', () => {
    const target = influxBackupTargetOf(
      loadBackupConfig({ INFLUX_API: 'v1', INFLUX_URL: 'http://db.internal:8086', INFLUX_DATABASE: 'fleet' }),
    )
    expect(target.backupCommand('/b/influxdb')).toEqual({
      command: 'influxd',
      args: ['backup', '-portable', '-db', 'fleet', '-host', 'db.internal:8088', '/b/influxdb'],
    })
    expect(target.restoreCommand('/b/influxdb', 'iotflow')).toEqual({
      command: 'influxd',
      args: [
        'restore',
        '-portable',
        '-db',
        'iotflow',
        '-newdb',
        'fleet',
        '-host',
        'db.internal:8088',
        '/b/influxdb',
      ],
    })
  })

  it('2.x: influx backup/restore of INFLUX_BUCKET, the token in the environment', () => {
    const target = influxBackupTargetOf(
      loadBackupConfig({
        INFLUX_API: 'v2',
        INFLUX_URL: 'https://influx.internal:8086',
        INFLUX_TOKEN: 'secret-token',
        INFLUX_ORG: 'acme',
        INFLUX_BUCKET: 'telemetry',
      }),
    )
    const http = ['--host', 'https://influx.internal:8086', '--org', 'acme']
    expect(target.backupCommand('/b/influxdb')).toEqual({
      command: 'influx',
      args: ['backup', '/b/influxdb', ...http, '--bucket', 'telemetry'],
      env: { INFLUX_TOKEN: 'secret-token' },
    })
    const restore = target.restoreCommand('/b/influxdb', 'old')
    expect(restore.args).toEqual([
      'restore',
      '/b/influxdb',
      ...http,
      '--bucket',
      'old',
      '--new-bucket',
      'telemetry',
    ])
    expect(restore.args.join(' ')).not.toContain('secret-token')
  })
})

const v1Target = () => influxBackupTargetOf(loadBackupConfig({ INFLUX_API: 'v1' }))
const v2Target = () =>
  influxBackupTargetOf(
    loadBackupConfig({ INFLUX_API: 'v2', INFLUX_TOKEN: 't', INFLUX_ORG: 'o', INFLUX_BUCKET: 'b' }),
  )

/** Runs `check` with PATH holding only `programs` (name → the real program it links to). */
async function withPath(programs: Record<string, string>, check: () => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), 'iotflow-path-'))
  const saved = process.env.PATH
  try {
    for (const [name, target] of Object.entries(programs)) await symlink(target, join(dir, name))
    process.env.PATH = dir
    await check()
  } finally {
    process.env.PATH = saved
    await rm(dir, { recursive: true, force: true })
  }
}

const installed = (program: string) => execFileSync('which', [program], { encoding: 'utf8' }).trim()

// The programs run are the real ones on this machine: influxd 1.x and its shell, `influx` 1.x. No
// 2.x CLI is here, so the 2.x check is seen refusing, never passing.
describe('the InfluxDB server and tool of INFLUX_API are checked before a backup or restore', () => {
  it('1.x: influxd 1.x and a 1.x server pass; a 2.x server, or no influxd on PATH, is refused', async () => {
    await expect(checkInfluxServerAndTool(v1Target(), '1.6.7~rc0')).resolves.toBeUndefined()
    await expect(checkInfluxServerAndTool(v1Target(), 'v2.7.4')).rejects.toThrow(
      'INFLUX_API is v1 but the server at INFLUX_URL is InfluxDB v2.7.4: set INFLUX_API=v2',
    )
    await withPath({}, async () => {
      await expect(checkInfluxServerAndTool(v1Target(), '1.6.7~rc0')).rejects.toThrow(
        /need influxd 1\.x .* on PATH; `influxd version` said: influxd is not installed/,
      )
    })
  })

  it("2.x: a 1.x server is refused, and so is InfluxDB 1.x's shell where the 2.x CLI should be, or none", async () => {
    await expect(checkInfluxServerAndTool(v2Target(), '1.6.7~rc0')).rejects.toThrow(
      'INFLUX_API is v2 but the server at INFLUX_URL is InfluxDB 1.6.7~rc0: set INFLUX_API=v1',
    )
    // Both are named `influx`: the 1.x shell answers `influx version` with its usage.
    await withPath({ influx: installed('influx') }, async () => {
      await expect(checkInfluxServerAndTool(v2Target(), 'v2.7.4')).rejects.toThrow(
        /need influx, the InfluxDB 2\.x CLI \(influx-cli\) on PATH; `influx version` said: influx version failed \(exit 1\)/,
      )
    })
    await withPath({}, async () => {
      await expect(checkInfluxServerAndTool(v2Target(), 'v2.7.4')).rejects.toThrow(
        '`influx version` said: influx is not installed (not found on PATH)',
      )
    })
  })
})
