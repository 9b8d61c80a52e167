import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

/** One alert of an Alertmanager webhook notification. */
export interface NotifiedAlert {
  status: 'firing' | 'resolved'
  labels: Record<string, string>
  startsAt: string
  endsAt: string
}

/**
 * The receiving end of Alertmanager's webhook: a plain HTTP server that keeps every alert of every
 * notification it is sent, in order.
 */
export async function startAlertReceiver() {
  const alerts: NotifiedAlert[] = []
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { alerts: NotifiedAlert[] }
      alerts.push(...body.alerts)
      response.writeHead(200).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    alerts,
    /** The notified alerts of one device, as `status` strings (e.g. ['firing', 'resolved']). */
    statusesOf: (deviceId: number) =>
      alerts.filter((a) => a.labels.device_id === String(deviceId)).map((a) => a.status),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
