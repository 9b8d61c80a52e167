import { STATUS_CODES } from 'node:http'
import { type ErrorDetail, type ErrorResponse, parseJsonBody } from '@iotflow/contracts'
import type { DeviceAuthenticator } from '@iotflow/db'
import { type IngestService, IngestUnavailableError } from '@iotflow/ingest'
import type { Context } from '@opentelemetry/api'
import { preparePayload } from './prepare-payload.js'
import { errorTopic, parseTelemetryTopic } from './topics.js'

export type AuthMode = 'payload' | 'broker'

export type MessageVerdict =
  | { kind: 'accepted'; deviceId: number; batchId: string; accepted: number }
  | { kind: 'refused'; errorTopic: string; response: ErrorResponse }

export interface MessageHandlerOptions {
  authenticator: DeviceAuthenticator
  ingest: IngestService
  authMode: AuthMode
  topicRoot: string
  maxPayloadBytes: number
  /** Called for every message from a known, active device, as an HTTP request's authentication does. */
  seen(deviceId: number): void
}

/**
 * Decides one MQTT message with the same rules and answers as POST /api/v1/telemetry: size, strict
 * JSON, the device (by `api_key` in the payload, or the id the broker authenticated, which must
 * match the topic either way), then the shared ingest path. Resolves with a verdict once the batch
 * is queued or refused; rejects with IngestUnavailableError while Redis or Postgres is unreachable
 * (the message must then stay unacknowledged).
 */
export function createMessageHandler(options: MessageHandlerOptions) {
  const { authenticator, ingest, authMode, topicRoot, maxPayloadBytes, seen } = options

  return async function handle(
    topic: string,
    payload: Buffer,
    receivedAt = Date.now(),
    trace?: Context,
  ): Promise<MessageVerdict> {
    const parsedTopic = parseTelemetryTopic(topicRoot, topic)
    if (!parsedTopic) throw new Error(`not a telemetry topic: ${topic}`) // the subscription never yields one
    const refuse = (statusCode: number, message: string, errors?: ErrorDetail[]): MessageVerdict => ({
      kind: 'refused',
      errorTopic: errorTopic(topicRoot, parsedTopic.deviceLevel),
      response: {
        statusCode,
        error: STATUS_CODES[statusCode] ?? 'Error',
        message,
        ...(errors && { errors }),
      },
    })

    const { deviceId } = parsedTopic
    if (deviceId === null) {
      return refuse(400, 'the topic does not name a device id', [
        { path: '(topic)', message: 'the level after devices/ must be a device id' },
      ])
    }
    if (payload.length > maxPayloadBytes) {
      return refuse(413, `the payload is larger than ${maxPayloadBytes} bytes; nothing was queued`, [
        { path: '(body)', message: `${payload.length} bytes, at most ${maxPayloadBytes}` },
      ])
    }
    const json = parseJsonBody(payload)
    if (!json.ok) return refuse(400, json.message, json.errors)
    const prepared = preparePayload(json.value, parsedTopic.type)
    if ('problem' in prepared) return refuse(401, 'the api_key is not valid', [prepared.problem])

    let authentication: Awaited<ReturnType<DeviceAuthenticator['byId']>>
    try {
      if (prepared.apiKey !== undefined) authentication = await authenticator.byApiKey(prepared.apiKey)
      else if (authMode === 'broker') authentication = await authenticator.byId(deviceId)
      else
        return refuse(401, 'a device API key is required in the payload', [
          { path: 'api_key', message: 'is missing' },
        ])
    } catch (cause) {
      throw new IngestUnavailableError('devices', { cause })
    }
    if (!authentication.ok) return refuse(authentication.status, authentication.message)
    seen(authentication.device.id)
    if (authentication.device.id !== deviceId) {
      // Same answer as HTTP when a device names another device's id.
      return refuse(
        403,
        `this key does not belong to device ${deviceId}; a device may only publish under its own topic`,
      )
    }

    const outcome = await ingest.ingest(authentication.device, prepared.body, receivedAt, trace)
    if (outcome.status === 429) return refuse(429, outcome.message)
    if (outcome.status !== 202) return refuse(outcome.status, outcome.message, outcome.errors)
    return { kind: 'accepted', deviceId, batchId: outcome.batchId, accepted: outcome.accepted }
  }
}

export type MessageHandler = ReturnType<typeof createMessageHandler>
