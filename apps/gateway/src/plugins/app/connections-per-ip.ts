import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/**
 * A cap on the connections one client address holds open: one host cannot take every socket of the
 * gateway (idle or trickling connections until the timeouts close them). Over the cap a connection
 * is closed on arrival, before TLS or HTTP costs anything. Behind a load balancer every client has
 * its address: set 0 there and cap at the balancer.
 */
export default fp(
  async (fastify: FastifyInstance, options: { maxPerIp: number }) => {
    if (options.maxPerIp === 0) return
    const open = new Map<string, number>()
    fastify.server.on('connection', (socket) => {
      const address = socket.remoteAddress ?? ''
      const count = (open.get(address) ?? 0) + 1
      if (count > options.maxPerIp) {
        fastify.metrics.httpConnectionsRefused.inc()
        socket.destroy()
        return
      }
      open.set(address, count)
      socket.once('close', () => {
        const left = (open.get(address) ?? 1) - 1
        if (left === 0) open.delete(address)
        else open.set(address, left)
      })
    })
  },
  { name: 'connections-per-ip', dependencies: ['metrics'] },
)
