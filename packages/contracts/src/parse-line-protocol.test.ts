import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type LineProtocolParse, parseLineProtocol } from './parse-line-protocol.js'

const points = (result: LineProtocolParse) => {
  if (!result.ok) throw new Error(result.message)
  return result.points
}

describe('parseLineProtocol', () => {
  it('reads measurement, tags, typed fields and a nanosecond timestamp', () => {
    const [point] = points(
      parseLineProtocol(
        'weather,site=north,unit=c temp=21.5,count=3i,big=7u,ok=t,label="a b" 1700000000123456789',
      ),
    )
    expect(point).toEqual({
      line: 1,
      measurement: 'weather',
      tags: { site: 'north', unit: 'c' },
      fields: { temp: 21.5, count: 3, big: 7, ok: true, label: 'a b' },
      timeMs: 1700000000123,
    })
  })

  it('converts each precision to milliseconds, truncating below the millisecond', () => {
    const at = (line: string, precision: 'ns' | 'us' | 'ms' | 's') =>
      points(parseLineProtocol(line, precision))[0]?.timeMs
    expect(at('m v=1 1700000000123999999', 'ns')).toBe(1700000000123)
    expect(at('m v=1 1700000000123999', 'us')).toBe(1700000000123)
    expect(at('m v=1 1700000000123', 'ms')).toBe(1700000000123)
    expect(at('m v=1 1700000000', 's')).toBe(1700000000000)
    expect(at('m v=1 999', 'ns')).toBe(0)
    expect(at('m v=1 -1', 'ns')).toBe(-1)
    expect(at('m v=1', 'ns')).toBeUndefined()
  })

  it('undoes every escape of names and string values', () => {
    const [point] = points(
      parseLineProtocol(
        'my\\ meas\\,ure=x,tag\\ key\\,\\==tag\\ val\\,\\= field\\ key\\,\\==" quoted \\"x\\" back\\\\slash \\n" 1',
      ),
    )
    expect(point?.measurement).toBe('my meas,ure=x')
    expect(point?.tags).toEqual({ 'tag key,=': 'tag val,=' })
    expect(point?.fields).toEqual({ 'field key,=': ' quoted "x" back\\slash \\n' })
  })

  it('keeps a backslash that escapes nothing, and a string value across lines', () => {
    const result = points(parseLineProtocol('m\\x,t=a\\\\,b\\=c s="one\ntwo"\nm v=2'))
    expect(result[0]).toMatchObject({
      measurement: 'm\\x',
      tags: { t: 'a\\,b=c' },
      fields: { s: 'one\ntwo' },
    })
    expect(result[1]).toMatchObject({ line: 3, fields: { v: 2 } })
  })

  it('skips blank lines, comments, CRLF and surrounding whitespace', () => {
    const result = points(parseLineProtocol('# header\r\n\r\n  m v=1  1 \r\n\n\tm v=-1.5e3\n# end'))
    expect(result.map((p) => [p.line, p.fields.v, p.timeMs])).toEqual([
      [3, 1, 0],
      [5, -1500, undefined],
    ])
  })

  it('reads every boolean spelling and float form', () => {
    const [point] = points(
      parseLineProtocol(
        'm a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE,k=1.,l=.5,n=-0,o=1E2,p=+3',
      ),
    )
    expect(point?.fields).toEqual({
      a: true,
      b: true,
      c: true,
      d: true,
      e: true,
      f: false,
      g: false,
      h: false,
      i: false,
      j: false,
      k: 1,
      l: 0.5,
      n: -0,
      o: 100,
      p: 3,
    })
  })

  it.each([
    ['m', 'line 1: fields are missing: "m"'],
    ['m,t=1', 'line 1: fields are missing'],
    ['m v', 'line 1: field key "v" is not followed by "="'],
    ['m v=', 'line 1: field "v" has no value'],
    ['m v=abc', 'line 1: field "v" has an invalid value abc'],
    ['m v=1.2.3', 'invalid value 1.2.3'],
    ['m v=1x', 'invalid value 1x'],
    ['m v=NaN', 'invalid value NaN'],
    ['m v=1e999', 'out of the range of a float'],
    ['m v=1.5i', 'invalid integer 1.5i'],
    ['m v=9223372036854775808i', 'invalid integer'],
    ['m v=-1u', 'invalid unsigned integer'],
    ['m v=18446744073709551616u', 'invalid unsigned integer'],
    ['m v="open', 'has no closing quote'],
    ['m v=1 12x', 'the timestamp 12x is not an integer'],
    ['m v=1 1 2', 'there is more after the timestamp'],
    [',t=1 v=1', 'measurement is empty'],
    ['m,=1 v=1', 'tag key is empty'],
    ['m,t= v=1', 'tag value is empty'],
    ['m,t=a=b v=1', 'tag value "a" holds an unescaped "="'],
    ['m,t=1,t=2 v=1', 'tag "t" appears twice'],
    ['m =1', 'field key is empty'],
    ['m __proto__=1', '"__proto__" is not allowed'],
  ])('refuses %j naming the line', (line, message) => {
    const result = parseLineProtocol(`ok v=1\n${line}\nok v=2`)
    expect(result.ok).toBe(false)
    if (result.ok) return
    expect(result.line).toBe(2)
    expect(result.message).toContain(message.replace('line 1', 'line 2'))
  })

  it('accepts the extremes of 64-bit integers', () => {
    const [point] = points(
      parseLineProtocol('m a=9223372036854775807i,b=-9223372036854775808i,c=18446744073709551615u'),
    )
    // Numbers, rounded to the nearest double (as every number is stored).
    expect(point?.fields).toEqual({ a: 2 ** 63, b: -(2 ** 63), c: 2 ** 64 })
  })

  it('reads lines that repeat, alternate or nearly repeat the series and keys before them', () => {
    const result = points(
      parseLineProtocol(
        [
          'cpu,cpu=0 usage=1,idle=2 1',
          'cpu,cpu=0 usage=3,idle=4 2',
          'mem,cpu=0 usage=5 3',
          'cpu,cpu=0 usage=6,idle=7,extra=8 4',
          'cpu,cpu=01 usage_x=9,idlex=10 5',
          'cpu,cpu=0\\ x usage\\=x=11 6',
          'cpu usage=12 7',
        ].join('\n'),
        'ms',
      ),
    )
    expect(
      result.map(({ measurement, tags, fields, timeMs }) => [measurement, tags, fields, timeMs]),
    ).toEqual([
      ['cpu', { cpu: '0' }, { usage: 1, idle: 2 }, 1],
      ['cpu', { cpu: '0' }, { usage: 3, idle: 4 }, 2],
      ['mem', { cpu: '0' }, { usage: 5 }, 3],
      ['cpu', { cpu: '0' }, { usage: 6, idle: 7, extra: 8 }, 4],
      ['cpu', { cpu: '01' }, { usage_x: 9, idlex: 10 }, 5],
      ['cpu', { cpu: '0 x' }, { 'usage=x': 11 }, 6],
      ['cpu', undefined, { usage: 12 }, 7],
    ])
  })

  it('hands every line whose tags are written alike one tags object, whatever its measurement and wherever it is', () => {
    const result = points(
      parseLineProtocol(
        [
          'env,host=a,room=1 temp=1 1',
          'power volts=230 2',
          'env,host=b temp=2 3',
          'env,host=a,room=1 temp=3 4',
          'power,host=a,room=1 volts=231 5',
          'env,host=b temp=4 6',
          'env,host=a,room=2 temp=5 7',
          'env,host=a,room=1 temp=6 8',
        ].join('\n'),
        'ms',
      ),
    )
    const [a, none, b, a2, powerA, b2, other, a3] = result
    expect(a?.tags).toEqual({ host: 'a', room: '1' })
    for (const same of [a2, powerA, a3]) expect(same?.tags).toBe(a?.tags)
    expect(b2?.tags).toBe(b?.tags)
    expect(b?.tags).toEqual({ host: 'b' })
    expect(other?.tags).toEqual({ host: 'a', room: '2' })
    expect(other?.tags).not.toBe(a?.tags)
    expect(none?.tags).toBeUndefined()
    expect(result.map((p) => [p.measurement, p.fields, p.timeMs])).toEqual([
      ['env', { temp: 1 }, 1],
      ['power', { volts: 230 }, 2],
      ['env', { temp: 2 }, 3],
      ['env', { temp: 3 }, 4],
      ['power', { volts: 231 }, 5],
      ['env', { temp: 4 }, 6],
      ['env', { temp: 5 }, 7],
      ['env', { temp: 6 }, 8],
    ])
  })

  it('reads a series met before again as it was read, escapes and all', () => {
    const series = [String.raw`m\ x,t\ k=v\,1`, String.raw`m\ x,t\ k=v\ 2`, String.raw`m\\\ y,a=b`]
    const lines = [...series, ...series, series[0]].map((s, i) => `${s} f=${i} ${i}`)
    const result = points(parseLineProtocol(lines.join('\n'), 'ms'))
    expect(result.map((p) => [p.measurement, p.tags, p.fields.f])).toEqual([
      ['m x', { 't k': 'v,1' }, 0],
      ['m x', { 't k': 'v 2' }, 1],
      [String.raw`m\\ y`, { a: 'b' }, 2],
      ['m x', { 't k': 'v,1' }, 3],
      ['m x', { 't k': 'v 2' }, 4],
      [String.raw`m\\ y`, { a: 'b' }, 5],
      ['m x', { 't k': 'v,1' }, 6],
    ])
  })

  it('names fields <measurement>.<field> when asked, and names the field as sent in errors', () => {
    const result = parseLineProtocol('cpu usage=1 1\nmem usage=2 1\ncpu usage=3,idle=4i 2', 'ms', {
      qualifyFields: true,
    })
    expect(points(result).map((p) => p.fields)).toEqual([
      { 'cpu.usage': 1 },
      { 'mem.usage': 2 },
      { 'cpu.usage': 3, 'cpu.idle': 4 },
    ])
    const bad = parseLineProtocol('cpu usage=1 1\ncpu usage=x 2', 'ms', { qualifyFields: true })
    expect(bad).toMatchObject({ ok: false, line: 2, message: expect.stringContaining('field "usage" has') })
  })

  it('reads any number exactly as Number() does, by the digits or from the token', () => {
    const token = fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
      fc
        .tuple(
          fc.boolean(),
          fc.stringMatching(/^[0-9]{1,18}$/),
          fc.option(fc.stringMatching(/^[0-9]{0,18}$/)),
        )
        .map(
          ([negative, whole, fraction]) =>
            `${negative ? '-' : ''}${whole}${fraction === null ? '' : `.${fraction}`}`,
        ),
    )
    fc.assert(
      fc.property(token, fc.constantFrom('', ' 1', ',b=1'), (value, after) => {
        const [point] = points(parseLineProtocol(`m a=${value}${after}`))
        expect(Object.is(point?.fields.a, Number(value))).toBe(true)
      }),
      { numRuns: 2000 },
    )
  })
})
