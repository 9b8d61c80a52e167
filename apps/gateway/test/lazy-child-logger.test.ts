import { Writable } from 'node:stream'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { LazyChildLogger } from '../src/lib/lazy-child-logger.js'

function captured(level: string) {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)))
      done()
    },
  })
  return { logger: pino({ level }, stream), lines }
}

describe('LazyChildLogger', () => {
  it('writes the lines a pino child would, with every binding of the chain', async () => {
    const { logger, lines } = captured('info')
    const child = new LazyChildLogger(logger, { reqId: 'r1' }).child({ device_id: 7 })
    child.info({ extra: true }, 'hello')
    child.debug('not written at info')
    await new Promise((resolve) => setImmediate(resolve))
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ reqId: 'r1', device_id: 7, extra: true, msg: 'hello', level: 30 })
  })

  it('builds no pino child while nothing is written, and follows level changes', async () => {
    const { logger, lines } = captured('warn')
    let children = 0
    const counting = Object.assign(Object.create(logger), {
      child: (...args: Parameters<typeof logger.child>) => {
        children++
        return logger.child(...args)
      },
    })
    const lazy = new LazyChildLogger(counting, { reqId: 'r2' })
    lazy.info('dropped')
    expect(children).toBe(0)
    lazy.level = 'debug'
    lazy.debug('kept')
    await new Promise((resolve) => setImmediate(resolve))
    expect(children).toBe(1)
    expect(lines).toEqual([expect.objectContaining({ reqId: 'r2', msg: 'kept', level: 20 })])
  })
})
