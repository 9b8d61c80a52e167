import { setTimeout as sleep } from 'node:timers/promises'

/** A registered device the generator sends as. */
export interface LoadDevice {
  id: number
  apiKey: string
}

export interface LoadPlan {
  devices: LoadDevice[]
  /** Points per device: sequences 0 … pointsPerDevice-1. */
  pointsPerDevice: number
  pointsPerRequest: number
  /** Requests are spread evenly over this time (the load, not a burst). */
  durationMs: number
  /** Requests in flight at most, retries included. */
  concurrency: number
  /** Epoch ms of sequence 0; sequence s is stored at `baseTime + s * 10`. */
  baseTime: number
}

/** One numbered request: a device and a run of consecutive sequences. */
interface PlannedRequest {
  device: LoadDevice
  firstSeq: number
  count: number
  baseTime: number
}

/** The time and fields of point `seq`: what must be found, unchanged, in both stores. */
export const pointTime = (baseTime: number, seq: number) => baseTime + seq * 10
export const pointFields = (deviceId: number, seq: number) => ({ seq, value: deviceId * 1000 + seq * 0.25 })

const REQUEST_TIMEOUT_MS = 10_000
const RETRY_DELAY_MS = 200
const RETRY_DELAY_MAX_MS = 2_000

/**
 * Sends numbered points (device, sequence) through the gateways and records which were acknowledged
 * (a 202). Whatever gets no 202 (an error, a 503, a connection cut by a killed gateway) is sent again,
 * unchanged, to the next gateway, until it is acknowledged: the client side of "nothing acknowledged
 * is lost". Talks only to the 127.0.0.1 gateways it is given.
 */
export class LoadGenerator {
  /** Points sent at least once. */
  sent = 0
  /** Points acknowledged, and when (for "is this store current?" checks). */
  acknowledged = 0
  readonly ackTimeline: { at: number; acknowledged: number }[] = []
  /** HTTP answers and errors by status or error code, retries included. */
  readonly outcomes = new Map<string, number>()
  /** Requests refused for good (a 4xx other than 429): a defect of the load or of the gateway. */
  readonly refused: string[] = []
  private readonly ackedRequests: PlannedRequest[] = []
  private readonly sentRequests: PlannedRequest[] = []
  private nextGateway = 0
  private inFlight = 0
  private stopping = false

  constructor(private readonly gatewayUrls: () => string[]) {}

  /** Runs the plan; resolves once every request has been acknowledged (or refused for good). */
  async run(plan: LoadPlan): Promise<void> {
    const requests = planRequests(plan)
    const intervalMs = plan.durationMs / requests.length
    const started = performance.now()
    const running = new Set<Promise<void>>()
    for (const [i, request] of requests.entries()) {
      const due = started + i * intervalMs
      const wait = due - performance.now()
      if (wait > 0) await sleep(wait)
      while (this.inFlight >= plan.concurrency && running.size > 0) await Promise.race(running)
      const task = this.sendUntilAcknowledged(request).finally(() => running.delete(task))
      running.add(task)
    }
    await Promise.all(running)
  }

  /** Sends one extra request (e.g. a poison batch) the same way, tracked like the rest. */
  sendExtra(device: LoadDevice, baseTime: number, count: number): Promise<void> {
    return this.sendUntilAcknowledged({ device, firstSeq: 0, count, baseTime })
  }

  stop() {
    this.stopping = true
  }

  /** Acknowledged (or sent) points of one device, by time, with the fields that were sent. */
  points(which: 'acknowledged' | 'sent', deviceId: number): Map<number, Record<string, number>> {
    const points = new Map<number, Record<string, number>>()
    for (const r of which === 'acknowledged' ? this.ackedRequests : this.sentRequests) {
      if (r.device.id !== deviceId) continue
      for (let seq = r.firstSeq; seq < r.firstSeq + r.count; seq++) {
        points.set(pointTime(r.baseTime, seq), pointFields(deviceId, seq))
      }
    }
    return points
  }

  /** Points acknowledged at or before `at` (performance.now() time). */
  acknowledgedBy(at: number): number {
    let count = 0
    for (const entry of this.ackTimeline) {
      if (entry.at > at) break
      count = entry.acknowledged
    }
    return count
  }

  private async sendUntilAcknowledged(request: PlannedRequest): Promise<void> {
    this.inFlight++
    this.sentRequests.push(request)
    this.sent += request.count
    const body = JSON.stringify({
      points: Array.from({ length: request.count }, (_, i) => {
        const seq = request.firstSeq + i
        return { timestamp: pointTime(request.baseTime, seq), data: pointFields(request.device.id, seq) }
      }),
    })
    try {
      for (let attempt = 0; !this.stopping; attempt++) {
        const outcome = await this.post(request.device.apiKey, body)
        this.count(outcome)
        if (outcome === '202') {
          this.ackedRequests.push(request)
          this.acknowledged += request.count
          this.ackTimeline.push({ at: performance.now(), acknowledged: this.acknowledged })
          return
        }
        if (/^4\d\d$/.test(outcome) && outcome !== '429') {
          this.refused.push(`${outcome} for device ${request.device.id} from seq ${request.firstSeq}`)
          return
        }
        await sleep(Math.min(RETRY_DELAY_MS * 2 ** attempt, RETRY_DELAY_MAX_MS))
      }
    } finally {
      this.inFlight--
    }
  }

  /** One attempt at the next gateway: its status code, or the error's code. */
  private async post(apiKey: string, body: string): Promise<string> {
    const urls = this.gatewayUrls()
    const url = urls[this.nextGateway++ % urls.length]
    try {
      const response = await fetch(`${url}/api/v1/telemetry`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': apiKey },
        body,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      })
      await response.arrayBuffer()
      return String(response.status)
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause
      return cause?.code ?? (error as Error).name
    }
  }

  private count(outcome: string) {
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1)
  }
}

/** Device-interleaved requests, each a run of consecutive sequences of one device. */
function planRequests(plan: LoadPlan): PlannedRequest[] {
  const requests: PlannedRequest[] = []
  for (let firstSeq = 0; firstSeq < plan.pointsPerDevice; firstSeq += plan.pointsPerRequest) {
    for (const device of plan.devices) {
      const count = Math.min(plan.pointsPerRequest, plan.pointsPerDevice - firstSeq)
      requests.push({ device, firstSeq, count, baseTime: plan.baseTime })
    }
  }
  return requests
}
