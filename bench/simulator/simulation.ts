import { setTimeout as sleep } from 'node:timers/promises'
import type { SimulatedDevice } from './fleet.js'
import { DeviceClock, SensorReadings } from './readings.js'
import { Tally } from './tally.js'

export interface TelemetryPoint {
  timestamp: number
  data: Record<string, number>
}

/** How a message is answered: accepted (202, PUBACK) or not, a status to count it by, a wait asked for. */
export interface Answer {
  accepted: boolean
  status: string
  retryAfterMs?: number
}

/** Sends one device's message (HTTP request or MQTT publish) and resolves with its answer. */
export type SendMessage = (device: SimulatedDevice, points: TelemetryPoint[]) => Promise<Answer>

export interface SimulationPlan {
  devices: SimulatedDevice[]
  send: SendMessage
  pointsPerMessage: number
  /** Points per second over the whole fleet; 0: each device sends again as soon as it is answered. */
  pointsPerSecond: number
  seconds: number
  /** Aborted: stop sending now (Ctrl-C), answers still awaited. */
  signal?: AbortSignal
  /** Called every second with that second's tally (and the seconds elapsed). */
  onSecond?: (second: number, tally: Tally) => void
}

interface DeviceState {
  device: SimulatedDevice
  readings: SensorReadings
  clock: DeviceClock
  /** Waiting for the answer to its previous message: a device sends one message at a time. */
  busy: boolean
  /** A 503 or 429 asked it to wait until then (performance.now()). */
  resumeAt: number
}

const TICK_MS = 5

/**
 * Devices sending telemetry at a target total rate (open loop: the offered rate does not slow down
 * when answers do), each device one message at a time and honouring Retry-After. Returns the tally
 * of the whole run, once every message sent has been answered (or 30 s after the end).
 */
export async function runSimulation(plan: SimulationPlan): Promise<{ total: Tally; seconds: number }> {
  const states: DeviceState[] = plan.devices.map((device) => ({
    device,
    readings: new SensorReadings(),
    clock: new DeviceClock(),
    busy: false,
    resumeAt: 0,
  }))
  const total = new Tally()
  let second = new Tally()
  let inFlight = 0
  const started = performance.now()
  let deadline = started + plan.seconds * 1000
  plan.signal?.addEventListener('abort', () => {
    deadline = Math.min(deadline, performance.now())
  })
  const stopAt = () => deadline

  const sendFrom = (state: DeviceState): Promise<void> => {
    state.busy = true
    inFlight++
    total.sent++
    second.sent++
    const points = Array.from({ length: plan.pointsPerMessage }, () => ({
      timestamp: state.clock.next(),
      data: state.readings.next(),
    }))
    const sentAt = performance.now()
    return plan.send(state.device, points).then((answer) => {
      const now = performance.now()
      total.record(answer.accepted, answer.status, now - sentAt)
      second.record(answer.accepted, answer.status, now - sentAt)
      if (answer.retryAfterMs !== undefined && !answer.accepted) state.resumeAt = now + answer.retryAfterMs
      state.busy = false
      inFlight--
    })
  }

  const reporter = setInterval(() => {
    const elapsed = Math.round((performance.now() - started) / 1000)
    plan.onSecond?.(elapsed, second)
    second = new Tally()
  }, 1000)
  try {
    if (plan.pointsPerSecond === 0) await closedLoop(states, stopAt, sendFrom)
    else {
      const missed = (count: number) => {
        total.missed += count
        second.missed += count
      }
      await openLoop(states, plan.pointsPerSecond / plan.pointsPerMessage, started, stopAt, sendFrom, missed)
    }
    const waitUntil = performance.now() + 30_000
    while (inFlight > 0 && performance.now() < waitUntil) await sleep(10)
  } finally {
    clearInterval(reporter)
  }
  return { total, seconds: (deadline - started) / 1000 }
}

/** Every device sends again as soon as it is answered (after any Retry-After). */
async function closedLoop(
  states: DeviceState[],
  stopAt: () => number,
  sendFrom: (s: DeviceState) => Promise<void>,
) {
  await Promise.all(
    states.map(async (state) => {
      while (performance.now() < stopAt()) {
        const wait = state.resumeAt - performance.now()
        if (wait > 0) await sleep(Math.min(wait, stopAt() - performance.now()))
        else await sendFrom(state)
      }
    }),
  )
}

/** Messages go out at `messagesPerSecond`, each from the next device that is free to send. */
async function openLoop(
  states: DeviceState[],
  messagesPerSecond: number,
  started: number,
  stopAt: () => number,
  sendFrom: (s: DeviceState) => Promise<void>,
  missed: (count: number) => void,
) {
  let due = 0
  let cursor = 0
  for (let now = performance.now(); now < stopAt(); now = performance.now()) {
    const target = Math.floor(((now - started) / 1000) * messagesPerSecond)
    for (; due < target; due++) {
      let state: DeviceState | undefined
      for (let tried = 0; tried < states.length && !state; tried++) {
        const candidate = states[cursor] as DeviceState
        cursor = (cursor + 1) % states.length
        if (!candidate.busy && candidate.resumeAt <= now) state = candidate
      }
      if (!state) {
        // Every device still waits for an answer: this tick's remaining messages are not sent.
        missed(target - due)
        due = target
        break
      }
      void sendFrom(state)
    }
    await sleep(TICK_MS)
  }
}
