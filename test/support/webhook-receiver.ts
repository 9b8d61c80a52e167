import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { WebhookNotice } from '@iotflow/contracts'

/** One request a rule's webhook received, and whether its signature held. */
export interface WebhookDelivery {
  path: string
  deliveryId: string | undefined
  notice: WebhookNotice
  signed: boolean
}

/**
 * A receiver of alert webhooks as an integrator would write one, on 127.0.0.1: it verifies
 * `X-IoTFlow-Signature` (HMAC-SHA256 of `<X-IoTFlow-Timestamp>.<body>`, under the secret of the
 * path's rule, with the timestamp at most five minutes off) independently of IoTFlow's code,
 * answers 401 to a bad one, and keeps every request. It can be stopped and started again on the
 * same port (a receiver down for a while).
 */
export async function startWebhookReceiver() {
  const secrets = new Map<string, string>()
  const deliveries: WebhookDelivery[] = []
  const verify = (
    path: string,
    timestamp: string | undefined,
    signature: string | undefined,
    body: string,
  ) => {
    const secret = secrets.get(path)
    if (!secret || !timestamp || !signature) return false
    if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false
    const expected = `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`
    return (
      expected.length === signature.length && timingSafeEqual(Buffer.from(expected), Buffer.from(signature))
    )
  }
  const handler: Parameters<typeof createServer>[1] = (request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const path = request.url ?? '/'
      const header = (name: string) => request.headers[name] as string | undefined
      const signed = verify(path, header('x-iotflow-timestamp'), header('x-iotflow-signature'), body)
      deliveries.push({ path, deliveryId: header('x-iotflow-delivery'), notice: JSON.parse(body), signed })
      response.writeHead(signed ? 204 : 401).end()
    })
  }
  let server: Server = createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  return {
    /** The URL of a webhook whose requests are verified with `secret` (set once it is known). */
    urlFor: (path: string) => `http://127.0.0.1:${port}${path}`,
    setSecret: (path: string, secret: string) => secrets.set(path, secret),
    deliveries,
    /** The states delivered to a path with a valid signature, in order. */
    statesAt: (path: string) =>
      deliveries.filter((d) => d.path === path && d.signed).map((d) => d.notice.state),
    stop: close,
    async start() {
      server = createServer(handler)
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    },
    close,
  }
}
