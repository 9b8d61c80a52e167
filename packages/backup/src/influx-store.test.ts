import { loadBackupConfig } from '@iotflow/config'
import { describe, expect, it } from 'vitest'
import { influxBackupTargetOf } from './influx-store.js'

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
