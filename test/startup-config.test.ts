import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'

/** Runs an app's build with only the given environment (plus PATH) and returns how it ended. */
function start(app: string, env: Record<string, string>) {
  const result = spawnSync('node', [`dist/${app}/main.js`], {
    env: { PATH: process.env.PATH ?? '', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  })
  return { status: result.status, stderr: result.stderr }
}

describe('an app started with bad configuration', () => {
  it.each([
    ['gateway', {}, 'ADMIN_TOKEN'],
    ['gateway', { ADMIN_TOKEN: 'long-enough-admin-token', PORT: 'http' }, 'PORT'],
    ['writer-postgres', { DATABASE_URL: 'mysql://localhost/x' }, 'DATABASE_URL'],
    ['writer-influx', { INFLUX_API: 'v2' }, 'INFLUX_TOKEN'],
    ['mqtt-bridge', { MQTT_AUTH_MODE: 'trust-me' }, 'MQTT_AUTH_MODE'],
    // One Redis mode, with what it needs (packages/config/src/redis-target.ts).
    [
      'gateway',
      {
        ADMIN_TOKEN: 'long-enough-admin-token',
        REDIS_SENTINELS: '127.0.0.1:26379',
        REDIS_CLUSTER_NODES: '127.0.0.1:7000',
      },
      'REDIS_CLUSTER_NODES',
    ],
    [
      'gateway',
      { ADMIN_TOKEN: 'long-enough-admin-token', REDIS_SENTINELS: '127.0.0.1:26379' },
      'REDIS_SENTINEL_NAME',
    ],
    [
      'writer-postgres',
      { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7000' },
      'REDIS_URL',
    ],
    ['writer-postgres', { REDIS_CLUSTER_NODES: '127.0.0.1' }, 'REDIS_CLUSTER_NODES'],
    ['writer-influx', { REDIS_SENTINEL_NAME: 'iotflow' }, 'REDIS_SENTINEL_NAME'],
    ['mqtt-bridge', { REDIS_PASSWORD: 'secret' }, 'REDIS_PASSWORD'],
    ['alert-evaluator', { REDIS_SENTINELS: 'sentinel-a:26379,sentinel-b' }, 'REDIS_SENTINELS'],
  ])('%s stops at once, naming the variable (%j)', (app, env, variable) => {
    const { status, stderr } = start(app, env)
    expect(status).toBe(1)
    expect(stderr).toContain('Invalid configuration')
    expect(stderr).toMatch(new RegExp(`^\\s+${variable}: `, 'm'))
  })
})
