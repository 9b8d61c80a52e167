const NOW_S = Math.floor(Date.now() / 1000)
const nested = (depth: number, leaf: string) => `${'{"a":'.repeat(depth)}${leaf}${'}'.repeat(depth)}`

export interface HostileCase {
  name: string
  body: string | Buffer | unknown
  contentType?: string
  status: number
  paths?: string[]
}

/**
 * Everything a device in the field may send that it should not, with the status and error paths
 * expected. Field type cases assume a seeded device stored `level` as a number, `flag` as a boolean
 * and `label` as a string.
 */
export const refused: HostileCase[] = [
  {
    name: 'data nested 5,000 levels deep',
    body: `{"data":${nested(5000, '1')}}`,
    status: 400,
    paths: ['data.a.a.a.a.a'],
  },
  {
    name: 'a body of arrays nested 100,000 deep',
    body: `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
    status: 400,
    paths: ['[0]'],
  },
  {
    name: 'metadata nested 10,000 levels deep',
    body: `{"data":{"v":1},"metadata":${nested(10_000, '1')}}`,
    status: 400,
    paths: ['metadata'],
  },
  {
    name: '100,000 points',
    body: { points: Array.from({ length: 100_000 }, () => ({ data: { v: 1 } })) },
    status: 413,
    paths: ['points'],
  },
  {
    name: '__proto__ at the top',
    body: '{"__proto__": {"polluted": 1}, "data": {"v": 1}}',
    status: 400,
    paths: ['(body)'],
  },
  { name: '__proto__ as a field', body: '{"data": {"__proto__": 1}}', status: 400, paths: ['(body)'] },
  {
    name: 'constructor.prototype',
    body: '{"data": {"v": 1}, "constructor": {"prototype": {"x": 1}}}',
    status: 400,
    paths: ['(body)'],
  },
  {
    name: 'invalid UTF-8',
    body: Buffer.from([0x7b, 0x22, 0x64, 0x61, 0x74, 0x61, 0x22, 0x3a, 0xff, 0xfe, 0x7d]),
    status: 400,
    paths: ['(body)'],
  },
  { name: 'NaN spelled in JSON', body: '{"data": {"v": NaN}}', status: 400, paths: ['(body)'] },
  { name: 'Infinity spelled in JSON', body: '{"data": {"v": Infinity}}', status: 400, paths: ['(body)'] },
  { name: '1e309 (overflows to Infinity)', body: '{"data": {"v": 1e309}}', status: 400, paths: ['data.v'] },
  { name: '-1e309', body: '{"data": {"v": -1e309}}', status: 400, paths: ['data.v'] },
  { name: 'empty data', body: { data: {} }, status: 400, paths: ['data'] },
  { name: 'empty batch', body: { points: [] }, status: 400, paths: ['points'] },
  { name: 'empty bare array', body: [], status: 400, paths: ['(body)'] },
  { name: 'an empty body', body: '', status: 400, paths: ['(body)'] },
  {
    name: 'truncated JSON',
    body: '{"points": [{"data": {"v": 1}}, {"data": ',
    status: 400,
    paths: ['(body)'],
  },
  { name: 'text/plain', body: '{"data": {"v": 1}}', contentType: 'text/plain', status: 415 },
  { name: 'a form', body: 'data=1', contentType: 'application/x-www-form-urlencoded', status: 415 },
  { name: 'XML', body: '<data v="1"/>', contentType: 'application/xml', status: 415 },
  { name: 'a timestamp of 0', body: { timestamp: 0, data: { v: 1 } }, status: 400, paths: ['timestamp'] },
  {
    name: 'a timestamp of 1e20',
    body: { timestamp: 1e20, data: { v: 1 } },
    status: 400,
    paths: ['timestamp'],
  },
  {
    name: 'a timestamp of "yesterday"',
    body: { timestamp: 'yesterday', data: { v: 1 } },
    status: 400,
    paths: ['timestamp'],
  },
  {
    name: 'a negative timestamp',
    body: { timestamp: -1, data: { v: 1 } },
    status: 400,
    paths: ['timestamp'],
  },
  {
    name: 'a boolean timestamp',
    body: { timestamp: true, data: { v: 1 } },
    status: 400,
    paths: ['timestamp'],
  },
  { name: 'a null timestamp', body: { timestamp: null, data: { v: 1 } }, status: 400, paths: ['timestamp'] },
  {
    name: 'February 30th',
    body: { timestamp: '2026-02-30T00:00:00Z', data: { v: 1 } },
    status: 400,
    paths: ['timestamp'],
  },
  { name: 'data null', body: { data: null }, status: 400, paths: ['data'] },
  { name: 'data an array', body: { data: [1, 2] }, status: 400, paths: ['data'] },
  { name: 'data a string', body: { data: 'hot' }, status: 400, paths: ['data'] },
  { name: 'no data at all', body: { timestamp: NOW_S }, status: 400, paths: ['data'] },
  { name: 'a null field', body: { data: { v: null } }, status: 400, paths: ['data.v'] },
  { name: 'an array field', body: { data: { v: [1, 2] } }, status: 400, paths: ['data.v'] },
  {
    name: 'a 5,000-character string',
    body: { data: { s: 'x'.repeat(5000) } },
    status: 400,
    paths: ['data.s'],
  },
  {
    name: 'a 200-character field name',
    body: { data: { ['n'.repeat(200)]: 1 } },
    status: 400,
    paths: [`data.${'n'.repeat(200)}`],
  },
  {
    name: '101 fields',
    body: { data: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`f${i}`, i])) },
    status: 400,
    paths: ['data'],
  },
  { name: 'a field named time', body: { data: { time: 1 } }, status: 400, paths: ['data.time'] },
  { name: 'a field named _start', body: { data: { _start: 1 } }, status: 400, paths: ['data._start'] },
  {
    name: 'a field named like a tag',
    body: { data: { device_id: 7 } },
    status: 400,
    paths: ['data.device_id'],
  },
  {
    name: 'a field name with a newline',
    body: { data: { 'a\nb': 1 } },
    status: 400,
    paths: ['data["a\\nb"]'],
  },
  {
    name: 'a field name ending in a backslash',
    body: { data: { 'a\\': 1 } },
    status: 400,
    paths: ['data["a\\\\"]'],
  },
  {
    name: 'a type with a control character',
    body: { data: { v: 1 }, type: 'a\u0000b' },
    status: 400,
    paths: ['type'],
  },
  {
    name: 'a 65-character type',
    body: { data: { v: 1 }, type: 't'.repeat(65) },
    status: 400,
    paths: ['type'],
  },
  { name: 'a numeric type', body: { data: { v: 1 }, type: 5 }, status: 400, paths: ['type'] },
  { name: 'metadata an array', body: { data: { v: 1 }, metadata: [1] }, status: 400, paths: ['metadata'] },
  { name: 'an unknown point property', body: { data: { v: 1 }, dta: { v: 2 } }, status: 400, paths: ['dta'] },
  { name: 'points not an array', body: { points: { data: { v: 1 } } }, status: 400, paths: ['points'] },
  {
    name: 'a property beside points',
    body: { points: [{ data: { v: 1 } }], device_id: 9 },
    status: 400,
    paths: ['device_id'],
  },
  { name: 'a number as the body', body: '42', status: 400, paths: ['(body)'] },
  { name: 'null as the body', body: 'null', status: 400, paths: ['(body)'] },
  { name: 'a string as the body', body: '"hello"', status: 400, paths: ['(body)'] },
  {
    name: 'a batch with two bad points among good ones (every bad one listed)',
    body: {
      points: [
        { data: { v: 1 } },
        { data: { v: 'x'.repeat(5000) } },
        { data: { v: 2 } },
        { timestamp: 'soon', data: { v: 3 } },
      ],
    },
    status: 400,
    paths: ['points[1].data.v', 'points[3].timestamp'],
  },
  // Field type conflicts: `level` is stored as a number, `flag` as a boolean, `label` as a string.
  {
    name: 'a string where a number was',
    body: { data: { level: 'high' } },
    status: 400,
    paths: ['data.level'],
  },
  {
    name: 'a boolean where a number was',
    body: { data: { level: true } },
    status: 400,
    paths: ['data.level'],
  },
  { name: 'a number where a boolean was', body: { data: { flag: 1 } }, status: 400, paths: ['data.flag'] },
  { name: 'a number where a string was', body: { data: { label: 3 } }, status: 400, paths: ['data.label'] },
  {
    name: 'a type change inside one batch',
    body: [{ data: { fresh: 1 } }, { data: { fresh: 'one' } }],
    status: 400,
    paths: ['[1].data.fresh'],
  },
  {
    name: 'a conflict among valid fields',
    body: { points: [{ data: { ok_field: 1, level: 'x' } }] },
    status: 400,
    paths: ['points[0].data.level'],
  },
]

/** What the seeding device sends first, so that the field type cases have types to conflict with. */
export const seedBody = { data: { level: 1.5, flag: true, label: 'blue' } }

/** A case's body as the bytes sent over HTTP or MQTT. */
export const bodyBytes = (body: HostileCase['body']): string | Buffer =>
  typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body)
