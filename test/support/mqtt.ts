import { spawn } from 'node:child_process'
import { loadMqttBridgeConfig } from '@iotflow/config'
import { exposition } from '@iotflow/metrics'
import { createLogger } from '@iotflow/runtime'
import { freePort, ScrapedMetrics, serviceUrls, uniqueName, waitFor } from '@iotflow/testkit'
import mqtt, { type MqttClient } from 'mqtt'
import { type MqttBridge, startMqttBridge } from '../../apps/mqtt-bridge/src/bridge.js'
import { APP_NODE_FLAGS } from '../../infra/build/build-apps.js'

export const sharedBrokerUrl = serviceUrls.mqtt

export interface BridgeTarget {
  databaseUrl: string
  queuePrefix: string
  redisUrl?: string
}

/**
 * The bridge's environment for a test: its own topic root, share group and client id, so that
 * tests on the shared broker never see each other's messages.
 */
export function bridgeEnv(
  target: BridgeTarget,
  overrides: Record<string, string> = {},
): Record<string, string> {
  return {
    REDIS_URL: target.redisUrl ?? serviceUrls.redis,
    DATABASE_URL: target.databaseUrl,
    QUEUE_PREFIX: target.queuePrefix,
    LOG_LEVEL: 'silent',
    MIGRATE_ON_START: 'false',
    HEALTH_PORT: '0',
    MQTT_URL: sharedBrokerUrl,
    MQTT_TOPIC_ROOT: uniqueName('iotflow'),
    MQTT_SHARE_GROUP: uniqueName('bridges'),
    MQTT_CLIENT_ID: uniqueName('bridge'),
    MQTT_CONNECTIONS: '4',
    // The broker forgets a test's sessions a minute after it ends.
    MQTT_SESSION_EXPIRY_SECONDS: '60',
    ...overrides,
  }
}

/** The bridge in this process. */
export function startBridge(env: Record<string, string>) {
  return startMqttBridge(loadMqttBridgeConfig(env), createLogger('mqtt-bridge', env.LOG_LEVEL ?? 'silent'))
}

/** A series of the bridge's GET /metrics, summed over the samples whose labels include `labels` (0 if none). */
export async function bridgeSeries(
  bridge: MqttBridge,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  return new ScrapedMetrics((await exposition(bridge.metrics.registry)).body).value(name, labels)
}

/** Runs the real `mosquitto_pub`; resolves with its exit code and what it printed on stderr. */
export function mosquittoPub(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('mosquitto_pub', args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (chunk) => {
      stderr += chunk
    })
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stderr }))
  })
}

/** `host` and `port` arguments of mosquitto_pub for a broker URL. */
export function brokerArgs(url: string): string[] {
  const { hostname, port } = new URL(url)
  return ['-h', hostname, '-p', port || '1883']
}

export interface Answer {
  topic: string
  body: { statusCode: number; error: string; message: string; errors?: { path: string; message: string }[] }
  correlation?: string
}

/** An mqtt.js client that collects every answer published on the errors topics under `root`. */
export async function openErrorInbox(url: string, root: string, options: mqtt.IClientOptions = {}) {
  const client: MqttClient = await mqtt.connectAsync(url, { protocolVersion: 5, ...options })
  const answers: Answer[] = []
  client.on('message', (topic, payload, packet) => {
    const correlation = packet.properties?.correlationData?.toString()
    answers.push({ topic, body: JSON.parse(payload.toString()), ...(correlation && { correlation }) })
  })
  await client.subscribeAsync(`${root}/devices/+/errors`, { qos: 1 })
  return {
    answers,
    /** The first answer on `topic`, waiting for it. */
    next: (topic: string, timeoutMs = 10_000) =>
      waitFor(() => answers.find((a) => a.topic === topic), { timeoutMs, what: `an answer on ${topic}` }),
    close: () => client.endAsync(),
  }
}

/**
 * Publishes `count` QoS 1 messages from one mqtt.js connection, at most `window` unacknowledged at
 * once; resolves with how many the broker acknowledged (PUBACK) and how many it did not.
 */
export async function publishMany(
  url: string,
  count: number,
  message: (index: number) => { topic: string; payload: string },
  options: { window?: number; clientOptions?: mqtt.IClientOptions; onAck?: (acked: number) => void } = {},
) {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, ...options.clientOptions })
  const window = options.window ?? 100
  let next = 0
  let acked = 0
  let failed = 0
  try {
    await Promise.all(
      Array.from({ length: window }, async () => {
        while (next < count) {
          const { topic, payload } = message(next++)
          try {
            await client.publishAsync(topic, payload, { qos: 1 })
            acked++
            options.onAck?.(acked)
          } catch {
            failed++
          }
        }
      }),
    )
  } finally {
    await client.endAsync()
  }
  return { acked, failed }
}

/** The bridge as its own process (`node dist/mqtt-bridge/main.js`), ready once /health/ready is 200. */
export async function spawnBridge(env: Record<string, string>) {
  const healthPort = await freePort()
  const child = spawn(process.execPath, [...APP_NODE_FLAGS, 'dist/mqtt-bridge/main.js'], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: { ...process.env, ...env, HEALTH_PORT: String(healthPort), LOG_LEVEL: env.LOG_LEVEL ?? 'error' },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`the bridge exited with ${child.exitCode}`)
      return (await fetch(`http://127.0.0.1:${healthPort}/health/ready`)).status === 200
    },
    { timeoutMs: 30_000, what: 'the bridge process to be ready' },
  )
  return {
    child,
    healthPort,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      await exited
    },
  }
}
