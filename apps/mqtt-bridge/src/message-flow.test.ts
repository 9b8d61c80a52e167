import { IngestUnavailableError } from '@iotflow/ingest'
import { createMqttBridgeMetrics, exposition } from '@iotflow/metrics'
import { ScrapedMetrics } from '@iotflow/testkit'
import type { IPublishPacket } from 'mqtt'
import { describe, expect, it } from 'vitest'
import { createMessageFlow, type MessageFlowOptions } from './message-flow.js'
import type { MessageVerdict } from './message-handler.js'

const silent = { debug() {}, warn() {}, error() {} }
const packet = { properties: {} } as IPublishPacket
const live = { live: true }
const accepted: MessageVerdict = { kind: 'accepted', deviceId: 1, batchId: 'b', accepted: 3 }

/** A flow whose ingest answers with `handle`, under a backlog that is over its bound until released. */
function flowWith(handle: MessageFlowOptions['handle'], backlog = { overLimit: false }) {
  const published: { topic: string; body: unknown }[] = []
  let underLimit = () => {}
  const monitor = {
    get overLimit() {
      return backlog.overLimit
    },
    whenUnderLimit: (signal?: AbortSignal) =>
      new Promise<void>((resolve, reject) => {
        underLimit = resolve
        signal?.addEventListener('abort', () => reject(signal.reason))
      }),
  }
  const metrics = createMqttBridgeMetrics()
  const flow = createMessageFlow({ handle, backlog: monitor, metrics, logger: silent })
  const connection = { publish: (topic: string, body: unknown) => void published.push({ topic, body }) }
  /** A series as GET /metrics shows it (0 when it has no sample). */
  const series = async (name: string, labels: Record<string, string> = {}) =>
    new ScrapedMetrics((await exposition(metrics.registry)).body).value(name, labels)
  return {
    flow,
    series,
    published,
    releaseBacklog: () => underLimit(),
    message: (delivery = live) =>
      flow.onMessage(connection, 'iot/1/telemetry', Buffer.from('{}'), packet, delivery),
  }
}

describe('a message through the bridge', () => {
  it('is acknowledged once the ingest path queued it, and counted', async () => {
    const { message, series } = flowWith(async () => accepted)
    expect(await message()).toBe('ack')
    expect(
      await Promise.all([
        series('iotflow_mqtt_messages_received_total'),
        series('iotflow_mqtt_messages_accepted_total'),
        series('iotflow_mqtt_points_accepted_total'),
        series('iotflow_points_accepted_total', { transport: 'mqtt' }),
      ]),
    ).toEqual([1, 1, 3, 3])
  })

  it('refused: the answer goes to its error topic; over the rate limit it is a quota-exceeded PUBACK', async () => {
    const response = { statusCode: 429, error: 'Too Many Requests', message: 'slow down' }
    const { message, published, series } = flowWith(async () => ({
      kind: 'refused',
      errorTopic: 'iot/1/errors',
      response,
    }))
    expect(await message()).toBe('quota-exceeded')
    expect(published).toEqual([{ topic: 'iot/1/errors', body: response }])
    expect(await series('iotflow_mqtt_messages_refused_total', { status: '429' })).toBe(1)
    expect(await series('iotflow_points_refused_total', { transport: 'mqtt', reason: 'rate_limited' })).toBe(
      1,
    )
  })

  it('is retried while a dependency is down, never acknowledged before it is queued', async () => {
    let attempts = 0
    const { message, series } = flowWith(async () => {
      if (++attempts < 3) throw new IngestUnavailableError('queue', { cause: new Error('ECONNREFUSED') })
      return accepted
    })
    expect(await message()).toBe('ack')
    expect(attempts).toBe(3)
    expect(await series('iotflow_mqtt_unavailable_retries_total')).toBe(2)
  })

  it('waits unacknowledged while the backlog is over its bound, and is held if its connection closed meanwhile', async () => {
    const backlog = { overLimit: true }
    let handled = 0
    const { message, releaseBacklog, series } = flowWith(async () => {
      handled++
      return accepted
    }, backlog)
    const waiting = message()
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(handled).toBe(0)
    backlog.overLimit = false
    releaseBacklog()
    expect(await waiting).toBe('ack')

    backlog.overLimit = true
    const delivery = { live: true }
    const stale = message(delivery)
    delivery.live = false
    releaseBacklog()
    expect(await stale).toBe('hold')
    expect([handled, await series('iotflow_mqtt_backlog_waits_total')]).toEqual([1, 2])
  })

  it('on close, lets a message being handled finish and stops retrying the others (held)', async () => {
    const { flow, message } = flowWith(async () => {
      throw new IngestUnavailableError('queue', { cause: new Error('down') })
    })
    const retrying = message()
    await new Promise((resolve) => setTimeout(resolve, 20))
    await flow.close()
    expect(await retrying).toBe('hold')
    expect(await message()).toBe('hold')
  })
})
