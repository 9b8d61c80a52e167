import { execFile } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { type PrivateServer, startPrivateServer } from './private-server.js'
import { answersPing, redisCommand, redisServerArgs } from './redis.js'
import { waitFor } from './wait-for.js'

const run = promisify(execFile)

/** What every data node of these setups runs with: durable (AOF, every second), never evicting. */
const dataNodeArgs = (dir: string, port: number) =>
  redisServerArgs(dir, port, ['--appendonly', 'yes', '--appendfsync', 'everysec'])

export interface PrivateRedisClusterOptions {
  /**
   * Replicas of each master: 1 (the default) is the production topology, failover included; 0 is
   * 3 masters alone, which costs the loaded machine of a benchmark no replication traffic.
   */
  replicasPerMaster?: 0 | 1
}

/** A Redis Cluster has at least 3 masters (`redis-cli --cluster create` refuses fewer). */
const CLUSTER_MASTERS = 3

/**
 * A Redis Cluster of its own: 3 masters, each with one replica unless asked otherwise
 * (`redis-cli --cluster create --cluster-replicas 1`), on free loopback ports (cluster bus ports
 * too) with their data in temp directories. A node may be killed and started again; `dispose`
 * removes everything.
 */
export async function startPrivateRedisCluster(options: PrivateRedisClusterOptions = {}) {
  const replicasPerMaster = options.replicasPerMaster ?? 1
  const nodes: PrivateServer[] = []
  const dispose = () => Promise.all(nodes.map((node) => node.dispose())).then(() => undefined)
  try {
    for (let i = 0; i < CLUSTER_MASTERS * (1 + replicasPerMaster); i++) {
      nodes.push(
        await startPrivateServer({
          name: 'redis-cluster',
          command: 'redis-server',
          args: (dir, port, busPort) => [
            ...dataNodeArgs(dir, port),
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(dir, 'nodes.conf'),
            '--cluster-port',
            String(busPort),
            // A master unreachable this long is failed over to its replica.
            '--cluster-node-timeout',
            '2000',
          ],
          answers: answersPing,
        }),
      )
    }
    const addresses = nodes.map((node) => `127.0.0.1:${node.port}`)
    await run('redis-cli', [
      '--cluster',
      'create',
      ...addresses,
      '--cluster-replicas',
      String(replicasPerMaster),
      '--cluster-yes',
    ])
    await waitFor(
      async () => {
        const infos = await Promise.all(nodes.map((node) => redisCommand(node.port, 'CLUSTER', 'INFO')))
        return infos.every((info) => String(info).includes('cluster_state:ok'))
      },
      { timeoutMs: 30_000, what: 'the cluster to be ok on every node' },
    )
  } catch (error) {
    await dispose()
    throw error
  }
  const cluster = {
    nodes,
    /** host:port of every node, comma-separated: REDIS_CLUSTER_NODES. */
    nodeList: nodes.map((node) => `127.0.0.1:${node.port}`).join(','),
    env: () => ({ REDIS_CLUSTER_NODES: cluster.nodeList }),
    /** The nodes that are masters now, by the cluster's own view. */
    async masters(): Promise<PrivateServer[]> {
      const roles = await Promise.all(
        nodes.map(async (node) =>
          node.pid() ? ((await redisCommand(node.port, 'ROLE')) as string[])[0] : undefined,
        ),
      )
      return nodes.filter((_, i) => roles[i] === 'master')
    },
    /** The replica of `master`, by its own view (ROLE names whom it replicates). */
    async replicaOf(master: PrivateServer): Promise<PrivateServer> {
      for (const node of nodes) {
        if (node === master || !node.pid()) continue
        const role = (await redisCommand(node.port, 'ROLE')) as unknown[]
        if (role[0] === 'slave' && Number(role[2]) === master.port) return node
      }
      throw new Error(`no replica of the master on port ${master.port}`)
    },
    /**
     * Call before stopping `master`: resolves once its replica says it is master and every live node
     * says the cluster is ok (the failover is over).
     */
    async failoverOf(master: PrivateServer, timeoutMs = 60_000): Promise<() => Promise<PrivateServer>> {
      const replica = await cluster.replicaOf(master)
      return () =>
        waitFor(
          async () => {
            if (((await redisCommand(replica.port, 'ROLE')) as unknown[])[0] !== 'master') return undefined
            const live = nodes.filter((node) => node !== master && node.pid())
            const infos = await Promise.all(live.map((node) => redisCommand(node.port, 'CLUSTER', 'INFO')))
            return infos.every((info) => String(info).includes('cluster_state:ok')) && replica
          },
          {
            timeoutMs,
            intervalMs: 200,
            what: `the replica on ${replica.port} to take over from ${master.port}`,
          },
        )
    },
    /**
     * Per master port, the indexes of `keys` whose hash slot that master owns (a master owning none
     * is absent): where a queue partition's hash tag lives, for instance.
     */
    async mastersOfKeys(keys: readonly string[]): Promise<Map<number, number[]>> {
      const [any] = nodes
      if (!any) throw new Error('no cluster node')
      const slots = (await redisCommand(any.port, 'CLUSTER', 'SLOTS')) as [number, number, [string, number]][]
      const byMaster = new Map<number, number[]>()
      for (const [i, key] of keys.entries()) {
        const slot = Number(await redisCommand(any.port, 'CLUSTER', 'KEYSLOT', key))
        const range = slots.find(([from, to]) => slot >= from && slot <= to)
        const port = Number(range?.[2][1])
        byMaster.set(port, [...(byMaster.get(port) ?? []), i])
      }
      return byMaster
    },
    /** Which ports are masters now, for a failing test's message. */
    async topology(): Promise<string> {
      return `masters on ${(await cluster.masters()).map((node) => node.port).join(', ')}`
    },
    dispose,
  }
  return cluster
}

export type PrivateRedisCluster = Awaited<ReturnType<typeof startPrivateRedisCluster>>

/**
 * A primary with 2 replicas watched by 3 sentinels (quorum 2), all of its own on free loopback ports,
 * data and sentinel configs in temp directories. The primary is named `name`; `failover()` asks
 * the sentinels to promote a replica and resolves once they name the new primary.
 */
export async function startPrivateRedisSentinel(name = 'iotflow') {
  const servers: PrivateServer[] = []
  const dispose = () => Promise.all(servers.map((server) => server.dispose())).then(() => undefined)
  const dataNode = (replicaOf?: number) =>
    startPrivateServer({
      name: 'redis-data',
      command: 'redis-server',
      args: (dir, port) => [
        ...dataNodeArgs(dir, port),
        // Announced as it is reached, so the sentinels hand out 127.0.0.1 addresses.
        '--replica-announce-ip',
        '127.0.0.1',
        ...(replicaOf ? ['--replicaof', '127.0.0.1', String(replicaOf)] : []),
      ],
      answers: answersPing,
    })
  try {
    const primary = await dataNode()
    servers.push(primary, await dataNode(primary.port), await dataNode(primary.port))
    for (let i = 0; i < 3; i++) {
      servers.push(
        await startPrivateServer({
          name: 'redis-sentinel',
          command: 'redis-sentinel',
          args: (dir, port) => {
            // The sentinel rewrites its config as it learns; a restarted one keeps what it knew.
            const config = join(dir, 'sentinel.conf')
            if (!existsSync(config))
              writeFileSync(
                config,
                [
                  'bind 127.0.0.1',
                  `port ${port}`,
                  `dir ${dir}`,
                  'sentinel announce-ip 127.0.0.1',
                  `sentinel monitor ${name} 127.0.0.1 ${primary.port} 2`,
                  // As infra/redis/sentinel.sh: at 1 s, a primary slowed by a loaded machine
                  // (an AOF fsync behind a busy disk) was failed over unasked, losing what it had
                  // not yet replicated. Tests that want a failover ask for one.
                  `sentinel down-after-milliseconds ${name} 5000`,
                  `sentinel failover-timeout ${name} 10000`,
                  `sentinel parallel-syncs ${name} 2`,
                  '',
                ].join('\n'),
              )
            return [config]
          },
          answers: answersPing,
        }),
      )
    }
  } catch (error) {
    await dispose()
    throw error
  }
  const dataNodes = servers.slice(0, 3)
  const sentinels = servers.slice(3)
  const primaryPort = async (sentinel = sentinels[0] as PrivateServer) =>
    Number(((await redisCommand(sentinel.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as string[])[1])
  // Ready once every sentinel knows both replicas and the two other sentinels.
  await waitFor(
    async () => {
      for (const sentinel of sentinels) {
        const replicas = (await redisCommand(sentinel.port, 'SENTINEL', 'REPLICAS', name)) as unknown[]
        const others = (await redisCommand(sentinel.port, 'SENTINEL', 'SENTINELS', name)) as unknown[]
        if (replicas.length < 2 || others.length < 2) return false
      }
      return true
    },
    { timeoutMs: 30_000, what: 'the sentinels to know both replicas and each other' },
  ).catch(async (error) => {
    await dispose()
    throw error
  })
  const setup = {
    name,
    dataNodes,
    sentinels,
    /** host:port of every sentinel, comma-separated: REDIS_SENTINELS. */
    sentinelList: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
    env: () => ({ REDIS_SENTINELS: setup.sentinelList, REDIS_SENTINEL_NAME: name }),
    /** The data node the sentinels name primary now. */
    async primary(): Promise<PrivateServer> {
      const port = await primaryPort()
      const node = dataNodes.find((n) => n.port === port)
      if (!node) throw new Error(`the sentinels name an unknown primary on port ${port}`)
      return node
    },
    /**
     * Waits until every sentinel names a primary other than `old` and that node says it is master:
     * a failover is over.
     */
    async newPrimaryAfter(old: PrivateServer, timeoutMs = 30_000): Promise<PrivateServer> {
      return waitFor(
        async () => {
          const ports = await Promise.all(sentinels.filter((s) => s.pid()).map((s) => primaryPort(s)))
          if (!ports.every((p) => p === ports[0]) || ports[0] === old.port) return undefined
          const node = dataNodes.find((n) => n.port === ports[0])
          const role = node && ((await redisCommand(node.port, 'ROLE')) as string[])[0]
          return role === 'master' ? node : undefined
        },
        { timeoutMs, what: `a primary other than port ${old.port}` },
      )
    },
    /**
     * The primary's port and the config epoch (one more for each failover since the start), for a
     * failing test's message: an unasked-for failover loses what was not yet replicated.
     */
    async topology(): Promise<string> {
      const master = (await redisCommand(
        (sentinels[0] as PrivateServer).port,
        'SENTINEL',
        'MASTER',
        name,
      )) as string[]
      const epoch = master[master.indexOf('config-epoch') + 1]
      return `primary on ${await primaryPort()}, config epoch ${epoch}`
    },
    /** SENTINEL FAILOVER: a replica is promoted at once; resolves with the new primary. */
    async failover(): Promise<PrivateServer> {
      const old = await setup.primary()
      await redisCommand((sentinels[0] as PrivateServer).port, 'SENTINEL', 'FAILOVER', name)
      return setup.newPrimaryAfter(old)
    },
    dispose,
  }
  return setup
}

export type PrivateRedisSentinel = Awaited<ReturnType<typeof startPrivateRedisSentinel>>
