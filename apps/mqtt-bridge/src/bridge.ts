import { type MqttBridgeConfig, redisTargetOf } from '@iotflow/config'
import {
  closeSql,
  createDeviceAuthenticator,
  createDevicesRepository,
  createSql,
  LastSeenTracker,
  migrateWhenReachable,
} from '@iotflow/db'
import { assembleIngest } from '@iotflow/ingest'
import { createMqttBridgeMetrics, type MqttBridgeMetrics } from '@iotflow/metrics'
import {
  type BacklogReport,
  backlogByPartition,
  createRedisConnection,
  type RedisDurability,
  readRedisDurability,
  reportRedisDurability,
  subscribeDeviceChanges,
  warnOnRedisErrors,
} from '@iotflow/queue'
import { type DependencyState, type Logger, probe, startPeriodicJob } from '@iotflow/runtime'
import { type BrokerConnection, openBrokerConnection } from './broker-connection.js'
import { watchBrokerDrops } from './broker-drop-watch.js'
import { brokerTlsFrom } from './broker-tls.js'
import { createMessageFlow } from './message-flow.js'
import { createMessageHandler } from './message-handler.js'
import { subscriptionTopics } from './topics.js'

export type BridgeReadiness = {
  dependencies: { broker: DependencyState; redis: DependencyState; postgres: DependencyState }
  /** The queue backlog against BACKLOG_MAX_POINTS (over it, messages wait unacknowledged). */
  backlog?: BacklogReport
  /** What Redis promises to keep: a PUBACK means "durably queued" only if it is durable. */
  redis_durability?: RedisDurability
}

export interface MqttBridge {
  /** The shared metrics (transport="mqtt", dependencies, process) and the bridge's own MQTT series. */
  metrics: MqttBridgeMetrics
  ready(): Promise<BridgeReadiness>
  close(): Promise<void>
}

const SUBSCRIBE_TIMEOUT_MS = 30_000

/**
 * The MQTT bridge: device messages in, queued batches out, through the ingest path the gateway
 * assembles too. Connections first, then the ingest path, then the brokers' messages, as the
 * gateway's app.ts. Resolves once every broker connection is subscribed.
 */
export async function startMqttBridge(config: MqttBridgeConfig, logger: Logger): Promise<MqttBridge> {
  if (config.MIGRATE_ON_START) await migrateWhenReachable(config.DATABASE_URL, logger)
  const sql = createSql(config.DATABASE_URL, { max: config.DATABASE_POOL_SIZE })
  const redis = warnOnRedisErrors(createRedisConnection(redisTargetOf(config), 'producer'), logger)
  redis.once('ready', () => void reportRedisDurability(redis, logger).catch(() => {}))

  const ingest = await assembleIngest({
    config,
    sql,
    redis,
    groupCommit: {
      maxPoints: config.MQTT_GROUP_COMMIT_MAX_POINTS,
      lingerMs: config.MQTT_GROUP_COMMIT_LINGER_MS,
      maxInFlight: config.MQTT_GROUP_COMMIT_MAX_INFLIGHT,
    },
    logger,
  })
  const devices = createDevicesRepository(sql)
  const authenticator = createDeviceAuthenticator({ devices, ttlMs: config.API_KEY_CACHE_TTL_MS })
  // A key revoked or a device deactivated on any gateway stops working here within a second too.
  const deviceChanges = await subscribeDeviceChanges(
    redisTargetOf(config),
    config.QUEUE_PREFIX,
    (deviceId) => authenticator.cache.forgetDevice(deviceId),
    (error) => logger.warn({ err: error.message }, 'device change subscription error'),
  )
  // last_seen of the devices heard from, written in one statement every LAST_SEEN_FLUSH_MS.
  const lastSeen = new LastSeenTracker((seen) => devices.touchLastSeen(seen))
  const lastSeenFlush = startPeriodicJob(
    'last-seen',
    config.LAST_SEEN_FLUSH_MS,
    () => lastSeen.flush(),
    logger,
  )

  const metrics = createMqttBridgeMetrics()
  metrics.backlogLimit.set(config.BACKLOG_MAX_POINTS)
  const flow = createMessageFlow({
    handle: createMessageHandler({
      authenticator,
      ingest: ingest.ingestService,
      authMode: config.MQTT_AUTH_MODE,
      topicRoot: config.MQTT_TOPIC_ROOT,
      maxPayloadBytes: config.BODY_LIMIT_BYTES,
      seen: (deviceId) => lastSeen.touch(deviceId),
    }),
    backlog: ingest.backlog,
    metrics,
    logger,
  })

  const topics = subscriptionTopics(config.MQTT_TOPIC_ROOT, config.MQTT_SHARE_GROUP)
  const tls = brokerTlsFrom(config)
  const connections = Array.from({ length: config.MQTT_CONNECTIONS }, (_, index) => {
    const connection: BrokerConnection = openBrokerConnection({
      url: config.MQTT_URL,
      clientId: `${config.MQTT_CLIENT_ID}-${index}`,
      username: config.MQTT_USERNAME,
      password: config.MQTT_PASSWORD,
      tls,
      sessionExpirySeconds: config.MQTT_SESSION_EXPIRY_SECONDS,
      topics,
      logger,
      onMessage: (topic, payload, packet, delivery) =>
        flow.onMessage(connection, topic, payload, packet, delivery),
    })
    return connection
  })
  const brokerDrops = watchBrokerDrops({
    url: config.MQTT_URL,
    clientId: `${config.MQTT_CLIENT_ID}-sys`,
    username: config.MQTT_USERNAME,
    password: config.MQTT_PASSWORD,
    logger,
    onCount: (dropped) => metrics.brokerDropped(dropped),
  })

  async function ready(): Promise<BridgeReadiness> {
    const [redisState, postgres] = await Promise.all([probe(() => redis.ping()), probe(() => sql`SELECT 1`)])
    const dependencies = { broker: brokerState(connections), redis: redisState, postgres }
    if (redisState.status !== 'up') return { dependencies }
    const [report, durability] = await Promise.all([
      ingest.backlog.readNow().catch(() => undefined),
      readRedisDurability(redis).catch(() => undefined),
    ])
    return { dependencies, backlog: report, redis_durability: durability }
  }

  let closing: Promise<void> | undefined
  const bridge: MqttBridge = {
    metrics,
    ready,
    close() {
      closing ??= (async () => {
        // Messages being handled finish (and are acknowledged); retries stop and leave theirs unacknowledged.
        await flow.close()
        await Promise.all([...connections.map((c) => c.end()), brokerDrops.close()])
        await ingest.close()
        await lastSeenFlush.close()
        await lastSeenFlush.runNow()
        await deviceChanges.close()
        await redis.quit().catch(() => redis.disconnect())
        await closeSql(sql)
      })()
      return closing
    },
  }
  metrics.readOnScrape({
    dependencies: async () => (await ready()).dependencies,
    backlog: async () => backlogByPartition(await ingest.backlog.readNow()),
  })
  metrics.readBridgeOnScrape({
    connections: () => ({
      connected: connections.filter((c) => c.connected).length,
      total: connections.length,
    }),
  })

  try {
    await subscribedWithin(connections, SUBSCRIBE_TIMEOUT_MS, config.MQTT_URL)
  } catch (error) {
    await bridge.close()
    throw error
  }
  logger.info({ broker: config.MQTT_URL, connections: connections.length, topics }, 'mqtt bridge subscribed')
  return bridge
}

/** Up while every broker connection is; otherwise how many are down, and the first one's error. */
function brokerState(connections: BrokerConnection[]): DependencyState {
  const down = connections.filter((c) => !c.connected)
  if (down.length === 0) return { status: 'up' }
  const cause = down[0]?.lastError ? `: ${down[0].lastError}` : ''
  return { status: 'down', error: `${down.length} of ${connections.length} connections down${cause}` }
}

async function subscribedWithin(connections: BrokerConnection[], timeoutMs: number, url: string) {
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not subscribed at ${url} after ${timeoutMs} ms`)), timeoutMs)
  })
  try {
    await Promise.race([Promise.all(connections.map((c) => c.subscribedOnce)), timedOut])
  } finally {
    clearTimeout(timer)
  }
}
