import { execFile } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { promisify } from 'node:util'
import { createRedisConnection } from '@iotflow/queue'
import {
  createTestDatabase,
  deleteKeys,
  freePort,
  registerDeviceOverHttp,
  ScrapedMetrics,
  serviceUrls,
  type TestDatabase,
  uniqueName,
  waitFor,
} from '@iotflow/testkit'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type AppProcess, spawnApp } from './support/app-process.js'
import { ADMIN_TOKEN } from './support/pipeline.js'

/**
 * Clients that hold sockets without finishing a request (slowloris), or hold them idle, against the
 * real gateway process: the server's timeouts close them, a cap per client address keeps one host
 * from taking every socket, and a normal client keeps getting its 202 meanwhile.
 */
const HEADERS_TIMEOUT_MS = 3_000
const MAX_CONNECTIONS_PER_IP = 1_000
const CONNECT_BATCH = 100
const queuePrefix = uniqueName('abuse')
let db: TestDatabase
let gateway: AppProcess
let base: string
let port: number
let device: { apiKey: string }
const sockets: Socket[] = []

beforeAll(async () => {
  db = await createTestDatabase()
  port = await freePort()
  gateway = spawnApp('gateway', {
    REDIS_URL: serviceUrls.redis,
    DATABASE_URL: db.url,
    QUEUE_PREFIX: queuePrefix,
    ADMIN_TOKEN,
    PORT: String(port),
    HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    HTTP_REQUEST_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    HTTP_KEEP_ALIVE_TIMEOUT_MS: '2000',
    HTTP_MAX_CONNECTIONS_PER_IP: String(MAX_CONNECTIONS_PER_IP),
  })
  base = `http://127.0.0.1:${port}`
  await waitFor(async () => (await fetch(`${base}/health/ready`)).ok, {
    timeoutMs: 60_000,
    what: 'the gateway',
  })
  device = await registerDeviceOverHttp(base, ADMIN_TOKEN, 'normal-client')
})

afterAll(async () => {
  for (const socket of sockets) socket.destroy()
  await gateway?.stop()
  const redis = createRedisConnection(serviceUrls.redis, 'worker')
  await deleteKeys(redis, `{${queuePrefix}}:*`)
  await redis.quit()
  await db?.drop()
})

interface Watched {
  socket: Socket
  /** When it was established and when it was closed (ms since the test's start); undefined until then. */
  openedAt?: number
  closedAt?: number
  /** The first line of what the server answered, if anything. */
  answer?: string
}

/**
 * Opens `count` TCP connections from a loopback address of their own (127.0.0.x), a batch at a time,
 * each once the gateway has taken the previous one from its listen queue: a full queue would leave
 * connections "connected" only on the client's side (the kernel drops the handshake's last ACK),
 * never reaching the gateway, so never closed by it either.
 */
async function openConnections(count: number, localAddress: string, start: number): Promise<Watched[]> {
  const connections: Watched[] = []
  for (let first = 0; first < count; first += CONNECT_BATCH) {
    connections.push(...(await openBatch(Math.min(CONNECT_BATCH, count - first), localAddress, start)))
    await waitFor(async () => (await listenQueueLength()) === 0, { what: 'the gateway to accept' })
  }
  return connections
}

/** Connections waiting in the gateway's listen queue (Recv-Q of its listening socket, from `ss`). */
async function listenQueueLength() {
  const { stdout } = await promisify(execFile)('ss', ['-Hltn', `sport = :${port}`])
  return Number(stdout.trim().split(/\s+/)[1])
}

/** Established connections on the gateway's side of its port (from `ss`). */
async function serverConnections() {
  const { stdout } = await promisify(execFile)('ss', ['-Htn', 'state', 'established', `( sport = :${port} )`])
  return stdout.split('\n').filter((line) => line.trim() !== '').length
}

async function openBatch(count: number, localAddress: string, start: number): Promise<Watched[]> {
  const opened: Promise<Watched>[] = []
  for (let i = 0; i < count; i++) {
    const socket = connect({ port, host: '127.0.0.1', localAddress })
    sockets.push(socket)
    const watched: Watched = { socket }
    socket.on('data', (chunk) => {
      watched.answer ??= chunk.toString('latin1').split('\r\n')[0]
    })
    socket.on('error', () => {}) // a reset is one way the server closes it
    socket.once('close', () => {
      watched.closedAt = Date.now() - start
    })
    opened.push(
      new Promise((resolve) =>
        socket
          .once('connect', () => {
            watched.openedAt = Date.now() - start
            resolve(watched)
          })
          .once('close', () => resolve(watched)),
      ),
    )
  }
  return Promise.all(opened)
}

/** POSTs one point as a normal client would; resolves with its status and how long it took. */
async function normalRequest(value: number) {
  const started = performance.now()
  const response = await fetch(`${base}/api/v1/telemetry`, {
    method: 'POST',
    headers: { 'x-api-key': device.apiKey, 'content-type': 'application/json' },
    body: JSON.stringify({ data: { v: value } }),
  })
  return { status: response.status, ms: performance.now() - started }
}

it('serves a normal client in under 1 s while 1,000 connections dribble headers a byte a second; closes them after the headers timeout, and refuses connections over the per-address cap', async () => {
  const start = Date.now()
  const refusedBefore = (await ScrapedMetrics.from(`${base}/metrics`)).value(
    'iotflow_http_connections_refused_total',
  )
  const dribblers = await openConnections(MAX_CONNECTIONS_PER_IP + 50, '127.0.0.2', start)
  const request = Buffer.from(
    `POST /api/v1/telemetry HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${device.apiKey}\r\n`,
  )
  let sent = 0
  const dribble = setInterval(() => {
    const byte = request.subarray(sent % request.length, (sent % request.length) + 1)
    sent++
    for (const { socket, closedAt } of dribblers) if (closedAt === undefined) socket.write(byte)
  }, 1_000)
  try {
    // The 50 over the cap are closed on arrival, without an answer.
    await waitFor(() => dribblers.filter((d) => d.closedAt !== undefined).length >= 50, {
      timeoutMs: 5_000,
      what: 'the connections over the cap to be closed',
    })
    const overCap = dribblers.filter((d) => d.closedAt !== undefined)
    expect(overCap).toHaveLength(50)
    expect(overCap.every((d) => d.answer === undefined)).toBe(true)
    const refused = (await ScrapedMetrics.from(`${base}/metrics`)).value(
      'iotflow_http_connections_refused_total',
    )
    expect(refused - refusedBefore).toBe(50)

    // Meanwhile a normal client from another address is answered at once, again and again.
    const latencies: number[] = []
    for (let i = 0; i < 5; i++) {
      const { status, ms } = await normalRequest(i)
      expect(status).toBe(202)
      latencies.push(ms)
      await new Promise((resolve) => setTimeout(resolve, 300))
    }
    expect(Math.max(...latencies)).toBeLessThan(1_000)

    // The 1,000 within the cap are answered 408 and closed once the headers timeout has passed.
    await waitFor(() => dribblers.every((d) => d.closedAt !== undefined), {
      timeoutMs: HEADERS_TIMEOUT_MS + 5_000,
      what: 'every dribbling connection to be closed',
    })
    const timedOut = dribblers.filter((d) => d.answer !== undefined)
    expect(timedOut).toHaveLength(MAX_CONNECTIONS_PER_IP)
    expect(new Set(timedOut.map((d) => d.answer))).toEqual(new Set(['HTTP/1.1 408 Request Timeout']))
    expect(Math.min(...timedOut.map((d) => d.closedAt ?? 0))).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 500)
  } finally {
    clearInterval(dribble)
  }
})

it('closes 10,000 idle connections by timeout, and an idle kept-alive connection after HTTP_KEEP_ALIVE_TIMEOUT_MS', async () => {
  const start = Date.now()
  // Ten client addresses, each at the cap: every connection is let in, then left idle.
  const idle = (
    await Promise.all(
      Array.from({ length: 10 }, (_, k) => openConnections(1_000, `127.0.0.${10 + k}`, start)),
    )
  ).flat()
  expect(idle.filter((c) => c.openedAt !== undefined)).toHaveLength(10_000)
  // The gateway's side is the truth: it holds none of them once the timeout has passed.
  await waitFor(async () => (await serverConnections()) === 0, {
    timeoutMs: HEADERS_TIMEOUT_MS + 15_000,
    what: 'the gateway to hold no idle connection',
  })
  // Each one it held was answered 408, and not before the timeout had passed for it. A few may
  // never have reached it: under load the kernel can drop a handshake's last ACK, leaving a
  // connection open only on the client's side.
  const answered = idle.filter((c) => c.answer !== undefined)
  expect(answered.length).toBeGreaterThanOrEqual(9_900)
  expect(new Set(answered.map((c) => c.answer))).toEqual(new Set(['HTTP/1.1 408 Request Timeout']))
  const lifetimes = answered.map((c) => (c.closedAt ?? 0) - (c.openedAt ?? 0))
  expect(Math.min(...lifetimes)).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 500)
  expect((await normalRequest(1)).status).toBe(202)

  // One full request on a kept-alive connection, then silence: closed after the keep-alive timeout.
  const [kept] = await openConnections(1, '127.0.0.3', Date.now())
  if (!kept) throw new Error('no connection')
  const sentAt = Date.now()
  kept.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n')
  await waitFor(() => kept.closedAt !== undefined, {
    timeoutMs: 10_000,
    what: 'the kept-alive connection to close',
  })
  expect(kept.answer).toBe('HTTP/1.1 200 OK')
  expect(Date.now() - sentAt).toBeGreaterThanOrEqual(1_500)
})
