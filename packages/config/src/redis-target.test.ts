import { describe, expect, it } from 'vitest'
import { ConfigError } from './parse-env.js'
import { describeRedisTarget, redisTargetOf } from './redis-target.js'

describe('the Redis target', () => {
  it('is the single Redis of REDIS_URL, or the default one', () => {
    expect(redisTargetOf({})).toEqual({ mode: 'single', url: 'redis://127.0.0.1:6379' })
    expect(redisTargetOf({ REDIS_URL: 'rediss://:pw@redis.example:6380/2' })).toEqual({
      mode: 'single',
      url: 'rediss://:pw@redis.example:6380/2',
    })
  })

  it('is the primary the sentinels name, with the data and sentinel passwords when given', () => {
    const target = redisTargetOf({
      REDIS_SENTINELS: 'sentinel-a:26379, 10.0.0.2:26380,[::1]:26381',
      REDIS_SENTINEL_NAME: 'iotflow',
      REDIS_PASSWORD: 'data',
      REDIS_SENTINEL_PASSWORD: 'watch',
    })
    expect(target).toEqual({
      mode: 'sentinel',
      sentinels: [
        { host: 'sentinel-a', port: 26379 },
        { host: '10.0.0.2', port: 26380 },
        { host: '::1', port: 26381 },
      ],
      name: 'iotflow',
      password: 'data',
      sentinelPassword: 'watch',
    })
    expect(describeRedisTarget(target)).toBe('sentinel iotflow via sentinel-a:26379,10.0.0.2:26380,::1:26381')
  })

  it('is a cluster found from any of its nodes', () => {
    expect(redisTargetOf({ REDIS_CLUSTER_NODES: 'a:7000,b:7001' })).toEqual({
      mode: 'cluster',
      nodes: [
        { host: 'a', port: 7000 },
        { host: 'b', port: 7001 },
      ],
    })
  })

  it.each([
    [{ REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_NAME: 'x', REDIS_CLUSTER_NODES: 'b:2' }, 'REDIS_CLUSTER_NODES'],
    [{ REDIS_URL: 'redis://a', REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_NAME: 'x' }, 'REDIS_URL'],
    [{ REDIS_SENTINELS: 'a:1' }, 'REDIS_SENTINEL_NAME'],
    [{ REDIS_SENTINEL_PASSWORD: 'p' }, 'REDIS_SENTINEL_PASSWORD'],
    [{ REDIS_CLUSTER_NODES: 'a:1', REDIS_SENTINEL_NAME: 'x' }, 'REDIS_SENTINEL_NAME'],
    [{ REDIS_URL: 'redis://a', REDIS_PASSWORD: 'p' }, 'REDIS_PASSWORD'],
  ])('refuses %j, naming %s', (env, variable) => {
    const error = (() => {
      try {
        redisTargetOf(env)
      } catch (caught) {
        return caught
      }
    })()
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).problems.map((p) => p.variable)).toEqual([variable])
  })

  it('never shows a password in words', () => {
    expect(describeRedisTarget({ mode: 'single', url: 'redis://user:secret@host:6379/0' })).toBe(
      'redis://host:6379/0',
    )
  })
})
