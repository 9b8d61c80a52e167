import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { usePipelineFixture } from './support/fixture.js'
import { expectInBothStores } from './support/line-protocol.js'

const fixture = usePipelineFixture()
const T = Date.UTC(2026, 10, 30, 9) // ms
const ns = (ms: number) => `${ms}000000`

describe('line protocol series in the queue', () => {
  it('interleaved series of one device: each point keeps its own measurement and tags, lines without tags none', async () => {
    // The queue carries each distinct measurement and tag set once per request (a dictionary):
    // what is stored must still be each line's own.
    const device = await fixture.pipeline.registerDevice()
    const lines = [
      `env,host=a,room=1 temp=1 ${ns(T)}`,
      `power volts=230i ${ns(T + 1)}`,
      `env,host=b temp=2 ${ns(T + 2)}`,
      `env,host=a,room=1 temp=3 ${ns(T + 3)}`,
      `power,host=a,room=1 volts=231i ${ns(T + 4)}`,
      `env,host=b temp=4 ${ns(T + 5)}`,
      `power volts=229i ${ns(T + 6)}`,
    ]
    const response = await fetch(`${fixture.pipeline.baseUrl}/api/v2/write?org=o&bucket=b`, {
      method: 'POST',
      headers: { authorization: `Token ${device.apiKey}`, 'content-encoding': 'gzip' },
      body: gzipSync(lines.join('\n')),
    })
    expect(response.status, await response.text()).toBe(204)
    await expectInBothStores(fixture, device.id, [
      { t: T, type: 'env', data: { temp: 1 }, metadata: { host: 'a', room: '1' } },
      { t: T + 1, type: 'power', data: { volts: 230 } },
      { t: T + 2, type: 'env', data: { temp: 2 }, metadata: { host: 'b' } },
      { t: T + 3, type: 'env', data: { temp: 3 }, metadata: { host: 'a', room: '1' } },
      { t: T + 4, type: 'power', data: { volts: 231 }, metadata: { host: 'a', room: '1' } },
      { t: T + 5, type: 'env', data: { temp: 4 }, metadata: { host: 'b' } },
      { t: T + 6, type: 'power', data: { volts: 229 } },
    ])
  })
})
