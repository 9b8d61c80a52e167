import { ConfigError } from './parse-env.js'

/** One Redis server (a sentinel, or a cluster node to start from). */
export interface RedisNode {
  host: string
  port: number
}

/**
 * Where the apps find Redis, read from one of three mutually exclusive settings: a single server
 * (`REDIS_URL`), a primary found through Sentinel (`REDIS_SENTINELS` + `REDIS_SENTINEL_NAME`), or a
 * Redis Cluster (`REDIS_CLUSTER_NODES`). Every connection of the apps and tools is made from this.
 */
export type RedisTarget =
  | { mode: 'single'; url: string }
  | {
      mode: 'sentinel'
      sentinels: RedisNode[]
      /** The monitored primary's name (`sentinel monitor <name> …`). */
      name: string
      /** The data nodes' password (AUTH), when they require one. */
      password?: string
      /** The sentinels' own password, when they require one. */
      sentinelPassword?: string
    }
  | { mode: 'cluster'; nodes: RedisNode[]; password?: string }

/** The variables `redisTargetOf` reads: the `redisEnv` fragment. */
export interface RedisTargetEnv {
  REDIS_URL?: string
  REDIS_SENTINELS?: string
  REDIS_SENTINEL_NAME?: string
  REDIS_SENTINEL_PASSWORD?: string
  REDIS_CLUSTER_NODES?: string
  REDIS_PASSWORD?: string
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'

/** `host:port,host:port` (already checked by the schema's pattern) as nodes. */
const nodesOf = (list: string): RedisNode[] =>
  list
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
    .map((item) => {
      const at = item.lastIndexOf(':')
      return { host: item.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(item.slice(at + 1)) }
    })

/**
 * The Redis target the variables name, or a ConfigError naming the variable at fault: exactly one
 * mode, each with what it needs and nothing that belongs to another.
 */
export function redisTargetOf(config: RedisTargetEnv): RedisTarget {
  const fail = (variable: string, message: string): never => {
    throw new ConfigError([{ variable, message }])
  }
  const sentinels = config.REDIS_SENTINELS
  const cluster = config.REDIS_CLUSTER_NODES
  if (sentinels !== undefined && cluster !== undefined)
    fail('REDIS_CLUSTER_NODES', 'REDIS_SENTINELS and REDIS_CLUSTER_NODES exclude each other (one Redis mode)')
  if (config.REDIS_URL !== undefined && (sentinels !== undefined || cluster !== undefined))
    fail(
      'REDIS_URL',
      `REDIS_URL names a single Redis and excludes ${sentinels !== undefined ? 'REDIS_SENTINELS' : 'REDIS_CLUSTER_NODES'}; unset it (the data password goes in REDIS_PASSWORD)`,
    )
  if (sentinels === undefined) {
    for (const variable of ['REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_PASSWORD'] as const)
      if (config[variable] !== undefined)
        fail(variable, `${variable} is only read with REDIS_SENTINELS, which is unset`)
  }
  if (sentinels !== undefined) {
    const name = config.REDIS_SENTINEL_NAME
    if (name === undefined)
      return fail(
        'REDIS_SENTINEL_NAME',
        'REDIS_SENTINELS needs the name of the primary the sentinels monitor, got unset',
      )
    return {
      mode: 'sentinel',
      sentinels: nodesOf(sentinels),
      name,
      ...(config.REDIS_PASSWORD !== undefined && { password: config.REDIS_PASSWORD }),
      ...(config.REDIS_SENTINEL_PASSWORD !== undefined && {
        sentinelPassword: config.REDIS_SENTINEL_PASSWORD,
      }),
    }
  }
  if (cluster !== undefined)
    return {
      mode: 'cluster',
      nodes: nodesOf(cluster),
      ...(config.REDIS_PASSWORD !== undefined && { password: config.REDIS_PASSWORD }),
    }
  if (config.REDIS_PASSWORD !== undefined)
    fail(
      'REDIS_PASSWORD',
      'REDIS_PASSWORD is only read with REDIS_SENTINELS or REDIS_CLUSTER_NODES; a single Redis takes it in REDIS_URL (redis://:password@host:port)',
    )
  return { mode: 'single', url: config.REDIS_URL ?? DEFAULT_REDIS_URL }
}

/** The target in words for logs and errors, without passwords. */
export function describeRedisTarget(target: RedisTarget): string {
  const list = (nodes: RedisNode[]) => nodes.map((n) => `${n.host}:${n.port}`).join(',')
  switch (target.mode) {
    case 'single': {
      const url = new URL(target.url)
      url.password = ''
      url.username = ''
      return url.toString()
    }
    case 'sentinel':
      return `sentinel ${target.name} via ${list(target.sentinels)}`
    case 'cluster':
      return `cluster via ${list(target.nodes)}`
  }
}
