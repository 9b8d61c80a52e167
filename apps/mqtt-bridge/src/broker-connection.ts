import type { Logger } from '@iotflow/runtime'
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt'

/**
 * What to do with a QoS 1 message once it has been handled: PUBACK it, PUBACK it with reason 0x97
 * (quota exceeded: refused for the device's rate limit), or leave it with the broker.
 */
export type Disposition = 'ack' | 'quota-exceeded' | 'hold'

/** MQTT 5 reason code of a PUBACK for a message refused because its sender is over its quota. */
export const QUOTA_EXCEEDED = 0x97

/** One delivery of a message: live until the connection that delivered it closes. */
export interface Delivery {
  /** False once that connection closed: the broker will deliver the message again on the next one. */
  readonly live: boolean
}

export interface BrokerConnectionOptions {
  url: string
  clientId: string
  username?: string
  password?: string
  /** For mqtts:// and wss://: the CA that signed the broker's certificate, and a client certificate. */
  tls?: BrokerTls
  sessionExpirySeconds: number
  topics: string[]
  logger: Logger
  /** Resolves 'ack' once the message is durably queued or refused for good; 'hold' leaves it unacknowledged. */
  onMessage(topic: string, payload: Buffer, packet: IPublishPacket, delivery: Delivery): Promise<Disposition>
}

export interface BrokerTls {
  ca?: Buffer
  cert?: Buffer
  key?: Buffer
}

const END_DEADLINE_MS = 3_000
/**
 * MQTT 5 receive maximum: QoS 1 messages the broker may send this connection before it has their
 * PUBACKs. Once that many are unacknowledged (held while Redis is down or the backlog is over its
 * limit) the broker sends no more and keeps the rest queued in the session. 20 is what Mosquitto
 * uses when a client names none (its max_inflight_messages); naming it holds with any broker.
 */
const RECEIVE_MAXIMUM = 20

/**
 * One MQTT 5 connection with a persistent session (fixed client id, clean start off, a session
 * expiry), subscribed with QoS 1. A message's PUBACK is sent only when `onMessage` says so: mqtt.js
 * waits for `customHandleAcks` before it reads the next packet, so each connection holds one
 * unacknowledged message at a time, and the broker keeps the rest (and redelivers, when the
 * session resumes, whatever was never acknowledged).
 */
export function openBrokerConnection(options: BrokerConnectionOptions) {
  const { logger, clientId } = options
  let holding = false
  let subscribed = false
  // Answers published at QoS 1 whose PUBACK has not arrived yet.
  let answersInFlight = 0
  let answersSettled: (() => void) | undefined
  let lastError: string | undefined
  // Counts closed connections: a delivery is live while this has not moved since it arrived.
  let closes = 0

  const clientOptions: IClientOptions = {
    clientId,
    clean: false,
    protocolVersion: 5,
    properties: { sessionExpiryInterval: options.sessionExpirySeconds, receiveMaximum: RECEIVE_MAXIMUM },
    reconnectPeriod: 1_000,
    connectTimeout: 10_000,
    resubscribe: false, // done on every connect, below
    // mqtt.js logs a dozen lines per message through `debug`, whose disabled check alone cost a
    // few percent of the bridge (docs/benchmarks.md); DEBUG=mqttjs* still turns them on.
    ...(!process.env.DEBUG?.includes('mqttjs') && { log: () => {} }),
    ...(options.username !== undefined && { username: options.username, password: options.password }),
    ...(options.tls && { ...options.tls, rejectUnauthorized: true }),
    customHandleAcks: (topic, payload, packet, done) => {
      const deliveredDuring = closes
      const delivery: Delivery = {
        get live() {
          return closes === deliveredDuring
        },
      }
      options.onMessage(topic, payload, packet, delivery).then(
        (disposition) => {
          if (disposition === 'ack') done(0)
          else if (disposition === 'quota-exceeded') done(QUOTA_EXCEEDED)
          // Not calling done keeps the message unacknowledged (and this connection paused) until
          // the connection closes; the broker redelivers it when the session resumes. A delivery
          // whose connection already closed holds nothing on the current one.
          else if (delivery.live) holding = true
        },
        (error: Error) => {
          logger.error({ err: error, clientId }, 'message handler failed; message left unacknowledged')
          if (delivery.live) holding = true
        },
      )
    },
  }
  const client: MqttClient = mqtt.connect(options.url, clientOptions)

  const subscribedOnce = new Promise<void>((resolve) => {
    client.on('connect', (connack) => {
      lastError = undefined
      holding = false // a message held on the previous connection comes back as a redelivery
      // Each PUBACK is a tiny packet the broker waits for: Nagle's algorithm would hold it back.
      ;(client.stream as { setNoDelay?: (noDelay: boolean) => void }).setNoDelay?.(true)
      logger.debug({ clientId, sessionPresent: connack.sessionPresent }, 'connected to the broker')
      // Subscribe on every connection, even when the session is present: Mosquitto 2.0 restores a
      // persistent session after its own restart, but not its shared subscriptions. Subscribing
      // again to a subscription the session has changes nothing.
      client.subscribe(options.topics, { qos: 1 }, (error, grants) => {
        const refused = grants?.filter((grant) => grant.qos >= 0x80) ?? []
        if (error || refused.length > 0) {
          lastError = error?.message ?? `subscription refused: ${refused.map((g) => g.topic).join(', ')}`
          logger.error({ clientId, err: lastError }, 'could not subscribe')
          return
        }
        subscribed = true
        resolve()
      })
    })
  })
  client.on('close', () => {
    subscribed = false
    closes++
  })
  client.on('error', (error) => {
    lastError = error.message
    logger.warn({ clientId, err: error.message }, 'broker connection error')
  })
  client.on('offline', () => logger.warn({ clientId }, 'broker connection lost; reconnecting'))

  let ending: Promise<void> | undefined
  return {
    clientId,
    subscribedOnce,
    get connected() {
      return client.connected && subscribed
    },
    get lastError() {
      return lastError
    },

    /** Answers a refused message; QoS 1, not awaited (its PUBACK arrives behind held messages). */
    publish(topic: string, body: unknown, correlationData?: Buffer) {
      answersInFlight++
      client.publish(
        topic,
        JSON.stringify(body),
        { qos: 1, ...(correlationData && { properties: { correlationData } }) },
        (error) => {
          if (error) logger.warn({ clientId, topic, err: error.message }, 'could not publish an answer')
          if (--answersInFlight === 0) answersSettled?.()
        },
      )
    },

    /**
     * Disconnects, keeping the session (and every unacknowledged message) at the broker. A
     * connection that holds a message cannot read its answers' PUBACKs, so it is closed at once;
     * the others first wait (with a deadline) for their answers to be acknowledged.
     */
    end(): Promise<void> {
      ending ??= (async () => {
        if (!holding && answersInFlight > 0) {
          let timer: NodeJS.Timeout | undefined
          await new Promise<void>((resolve) => {
            answersSettled = resolve
            timer = setTimeout(resolve, END_DEADLINE_MS)
          })
          clearTimeout(timer)
        }
        await new Promise<void>((resolve) => {
          // A message held after this started stalls the socket's reading side, so a clean
          // close would never finish: past the deadline, the socket is destroyed.
          const timer = setTimeout(() => client.stream.destroy(), END_DEADLINE_MS)
          client.end(holding || answersInFlight > 0, {}, () => {
            clearTimeout(timer)
            resolve()
          })
        })
      })()
      return ending
    },
  }
}

export type BrokerConnection = ReturnType<typeof openBrokerConnection>
