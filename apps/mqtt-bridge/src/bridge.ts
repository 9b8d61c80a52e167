import { setTimeout as sleep } from 'node:timers/promises'
import { type MqttBridgeConfig, redisTargetOf } from '@iotflow/config'
import {
  closeSql,
  createAlertRulesRepository,
  createDeviceAuthenticator,
  createDevicesRepository,
  createFieldTypesRepository,
  createSql,
  LastSeenTracker,
  migrateWhenReachable,
} from '@iotflow/db'
import {
  createIngestService,
  deviceRateLimiterFrom,
  FieldTypeRegistry,
  IngestUnavailableError,
  telemetryLimitsFrom,
} from '@iotflow/ingest'
import { createMetrics, exposition, recordIngest, refusalReasonOf } from '@iotflow/metrics'
import {
  type BacklogReport,
  createBatchEnqueuer,
  createGroupCommitEnqueuer,
  createRedisConnection,
  type RedisDurability,
  readRedisDurability,
  reportRedisDurability,
  startBacklogMonitor,
  subscribeDeviceChanges,
  watchAlertRules,
} from '@iotflow/queue'
import { type DependencyState, type Logger, probe, startPeriodicJob } from '@iotflow/runtime'
import type { Context } from '@opentelemetry/api'
import type { IPublishPacket } from 'mqtt'
import {
  type BrokerConnection,
  type Delivery,
  type Disposition,
  openBrokerConnection,
} from './broker-connection.js'
import { watchBrokerDrops } from './broker-drop-watch.js'
import { brokerTlsFrom } from './broker-tls.js'
import { createMessageHandler, type MessageVerdict } from './message-handler.js'
import { withMessageSpan } from './message-span.js'
import { BridgeMetrics } from './metrics.js'
import { subscriptionTopics } from './topics.js'

export type BridgeReadiness = {
  dependencies: { broker: DependencyState; redis: DependencyState; postgres: DependencyState }
  /** The queue backlog against BACKLOG_MAX_POINTS (over it, messages wait unacknowledged). */
  backlog?: BacklogReport
  /** What Redis promises to keep: a PUBACK means "durably queued" only if it is durable. */
  redis_durability?: RedisDurability
}

export interface MqttBridge {
  metrics: BridgeMetrics
  /** The shared metrics (transport="mqtt", dependencies, process) and the bridge's own MQTT counters. */
  renderMetrics(): Promise<string>
  ready(): Promise<BridgeReadiness>
  close(): Promise<void>
}

const RETRY_FIRST_MS = 100
const RETRY_MAX_MS = 2_000
const SUBSCRIBE_TIMEOUT_MS = 30_000

/**
 * The MQTT bridge: device messages in, queued batches out, through the gateway's ingest path.
 * Resolves once every broker connection is subscribed.
 */
export async function startMqttBridge(config: MqttBridgeConfig, logger: Logger): Promise<MqttBridge> {
  if (config.MIGRATE_ON_START) await migrateWhenReachable(config.DATABASE_URL, logger)
  const sql = createSql(config.DATABASE_URL, { max: config.DATABASE_POOL_SIZE })
  const redis = createRedisConnection(redisTargetOf(config), 'producer')
  redis.on('error', (error) => logger.warn({ err: error.message }, 'redis connection error'))
  redis.once('ready', () => void reportRedisDurability(redis, logger).catch(() => {}))
  const backlog = await startBacklogMonitor({
    redis,
    queuePrefix: config.QUEUE_PREFIX,
    limit: config.BACKLOG_MAX_POINTS,
    logger,
  })

  // Batches go to the alert evaluator too while any alert rule exists (docs/alerts.md).
  const alertRulesExist = await watchAlertRules({
    redisTarget: redisTargetOf(config),
    queuePrefix: config.QUEUE_PREFIX,
    load: async () => (await createAlertRulesRepository(sql).count()) > 0,
    refreshMs: config.ALERT_RULES_REFRESH_MS,
    logger,
    initial: true,
  })
  const retry = { attempts: config.STORE_JOB_ATTEMPTS, backoffMs: config.STORE_JOB_BACKOFF_MS }
  const alertFanOut = () => alertRulesExist.current()
  const replicasAck =
    config.REDIS_MIN_REPLICAS_ACK > 0
      ? { replicas: config.REDIS_MIN_REPLICAS_ACK, timeoutMs: config.REDIS_REPLICAS_ACK_TIMEOUT_MS }
      : undefined
  const batches = createBatchEnqueuer(redis, config.QUEUE_PREFIX, retry, {
    alertFanOut,
    ...(replicasAck && { replicasAck }),
  })
  const enqueuer = createGroupCommitEnqueuer(batches, {
    maxPoints: config.MQTT_GROUP_COMMIT_MAX_POINTS,
    lingerMs: config.MQTT_GROUP_COMMIT_LINGER_MS,
    maxInFlight: config.MQTT_GROUP_COMMIT_MAX_INFLIGHT,
  })
  const devices = createDevicesRepository(sql)
  const authenticator = createDeviceAuthenticator({ devices, ttlMs: config.API_KEY_CACHE_TTL_MS })
  // last_seen of the devices heard from, written in one statement every LAST_SEEN_FLUSH_MS.
  const lastSeen = new LastSeenTracker((seen) => devices.touchLastSeen(seen))
  // A key revoked or a device deactivated on any gateway stops working here within a second too.
  const deviceChanges = await subscribeDeviceChanges(
    redisTargetOf(config),
    config.QUEUE_PREFIX,
    (deviceId) => authenticator.cache.forgetDevice(deviceId),
    (error) => logger.warn({ err: error.message }, 'device change subscription error'),
  )
  const lastSeenFlush = startPeriodicJob(
    'last-seen',
    config.LAST_SEEN_FLUSH_MS,
    () => lastSeen.flush(),
    logger,
  )
  const handle = createMessageHandler({
    authenticator,
    ingest: createIngestService({
      fieldTypes: new FieldTypeRegistry(createFieldTypesRepository(sql)),
      enqueuer,
      limits: telemetryLimitsFrom(config),
      rateLimiter: deviceRateLimiterFrom(redis, config),
    }),
    authMode: config.MQTT_AUTH_MODE,
    topicRoot: config.MQTT_TOPIC_ROOT,
    maxPayloadBytes: config.BODY_LIMIT_BYTES,
    seen: (deviceId) => lastSeen.touch(deviceId),
  })
  const metrics = new BridgeMetrics()
  // The same series as the gateway and writers, so dashboards read one set of names.
  const shared = createMetrics()
  shared.backlogLimit.set(config.BACKLOG_MAX_POINTS)
  const stopping = new AbortController()
  const inFlight = new Set<Promise<Disposition>>()

  /** Handles a message until it is queued or refused; while a dependency is down, retries with backoff. */
  function decide(topic: string, payload: Buffer): Promise<MessageVerdict | null> {
    return withMessageSpan(topic, (trace) => decideTraced(topic, payload, trace))
  }

  async function decideTraced(
    topic: string,
    payload: Buffer,
    trace?: Context,
  ): Promise<MessageVerdict | null> {
    const receivedAt = Date.now()
    for (let delay = RETRY_FIRST_MS; ; delay = Math.min(delay * 2, RETRY_MAX_MS)) {
      if (stopping.signal.aborted) return null
      try {
        return await handle(topic, payload, receivedAt, trace)
      } catch (error) {
        if (error instanceof IngestUnavailableError) {
          if (metrics.unavailableRetries++ % 50 === 0) {
            logger.warn(
              { dependency: error.dependency, err: (error.cause as Error)?.message },
              'ingest unavailable; holding the message unacknowledged and retrying',
            )
          }
        } else {
          // A bug, not bad input: keep the message (never drop what was not stored), say so loudly.
          metrics.handlerFailures++
          logger.error({ err: error, topic }, 'unexpected error handling a message; retrying it')
        }
        await sleep(delay, undefined, { signal: stopping.signal }).catch(() => {})
      }
    }
  }

  async function onMessage(
    connection: BrokerConnection,
    topic: string,
    payload: Buffer,
    packet: IPublishPacket,
    delivery: Delivery,
  ): Promise<Disposition> {
    if (stopping.signal.aborted) return 'hold'
    metrics.messagesReceived++
    if (backlog.overLimit) {
      // Backpressure: the message waits unacknowledged, and so does its connection, so the broker
      // keeps the rest queued. Then it is handled as usual, unless its connection closed meanwhile
      // (a long wait outlasts the keepalive): the broker delivers it again on the next one.
      metrics.backlogWaits++
      const waited = await backlog.whenUnderLimit(stopping.signal).then(
        () => true,
        () => false,
      )
      if (!waited || !delivery.live) return 'hold'
    }
    const verdict = await decide(topic, payload)
    if (verdict === null) return 'hold'
    if (verdict.kind === 'accepted') {
      metrics.messagesAccepted++
      metrics.pointsAccepted += verdict.accepted
      recordIngest(shared, 'mqtt', 'accepted', verdict.accepted)
      return 'ack'
    }
    // Refused for good: answer, count, and acknowledge, so the broker does not redeliver it forever.
    metrics.refused(verdict.response.statusCode)
    recordIngest(shared, 'mqtt', refusalReasonOf(verdict.response.statusCode), 1)
    metrics.errorsPublished++
    connection.publish(verdict.errorTopic, verdict.response, packet.properties?.correlationData)
    logger.debug({ topic, statusCode: verdict.response.statusCode }, 'message refused')
    return verdict.response.statusCode === 429 ? 'quota-exceeded' : 'ack'
  }

  const topics = subscriptionTopics(config.MQTT_TOPIC_ROOT, config.MQTT_SHARE_GROUP)
  const tls = brokerTlsFrom(config)
  const connections: BrokerConnection[] = []
  for (let index = 0; index < config.MQTT_CONNECTIONS; index++) {
    const connection: BrokerConnection = openBrokerConnection({
      url: config.MQTT_URL,
      clientId: `${config.MQTT_CLIENT_ID}-${index}`,
      username: config.MQTT_USERNAME,
      password: config.MQTT_PASSWORD,
      tls,
      sessionExpirySeconds: config.MQTT_SESSION_EXPIRY_SECONDS,
      topics,
      logger,
      onMessage(topic, payload, packet, delivery) {
        const run = onMessage(connection, topic, payload, packet, delivery)
        inFlight.add(run)
        const settled = () => inFlight.delete(run)
        run.then(settled, settled) // a rejection is logged by the connection
        return run
      },
    })
    connections.push(connection)
  }

  const brokerDrops = watchBrokerDrops({
    url: config.MQTT_URL,
    clientId: `${config.MQTT_CLIENT_ID}-sys`,
    username: config.MQTT_USERNAME,
    password: config.MQTT_PASSWORD,
    logger,
  })

  let closing: Promise<void> | undefined
  const bridge: MqttBridge = {
    metrics,
    async renderMetrics() {
      const own = metrics.render(
        { connected: connections.filter((c) => c.connected).length, total: connections.length },
        brokerDrops.dropped,
      )
      return (await exposition(shared.registry)).body + own
    },
    async ready() {
      const down = connections.filter((c) => !c.connected)
      const [redisState, postgres] = await Promise.all([
        probe(() => redis.ping()),
        probe(() => sql`SELECT 1`),
      ])
      const broker: DependencyState =
        down.length === 0
          ? { status: 'up' }
          : {
              status: 'down',
              error: `${down.length} of ${connections.length} connections down${down[0]?.lastError ? `: ${down[0].lastError}` : ''}`,
            }
      const dependencies = { broker, redis: redisState, postgres }
      if (redisState.status !== 'up') return { dependencies }
      const [report, durability] = await Promise.all([
        backlog.readNow().catch(() => undefined),
        readRedisDurability(redis).catch(() => undefined),
      ])
      return { dependencies, backlog: report, redis_durability: durability }
    },
    close() {
      closing ??= (async () => {
        // Messages being handled finish (and are acknowledged); retries stop and leave theirs unacknowledged.
        stopping.abort()
        await Promise.allSettled([...inFlight])
        await Promise.all([...connections.map((c) => c.end()), brokerDrops.close()])
        await enqueuer.close()
        await lastSeenFlush.close()
        await lastSeenFlush.runNow()
        await backlog.close()
        await deviceChanges.close()
        await alertRulesExist.close()
        await redis.quit().catch(() => redis.disconnect())
        await closeSql(sql)
      })()
      return closing
    },
  }
  shared.readOnScrape({
    dependencies: async () => (await bridge.ready()).dependencies,
    backlog: async () => (await backlog.readNow()).points,
  })

  let timer: NodeJS.Timeout | undefined
  const subscribed = Promise.all(connections.map((c) => c.subscribedOnce))
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`not subscribed at ${config.MQTT_URL} after ${SUBSCRIBE_TIMEOUT_MS} ms`)),
      SUBSCRIBE_TIMEOUT_MS,
    )
  })
  try {
    await Promise.race([subscribed, timedOut])
  } catch (error) {
    await bridge.close()
    throw error
  } finally {
    clearTimeout(timer)
  }
  logger.info({ broker: config.MQTT_URL, connections: connections.length, topics }, 'mqtt bridge subscribed')
  return bridge
}
