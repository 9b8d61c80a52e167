/** A point as a producer queues it (DeviceBatch's points in @iotflow/contracts). */
interface SentPoint {
  t: number
  type?: string
  data: Record<string, number | boolean | string>
  metadata?: Record<string, unknown>
}

/** A PostgreSQL telemetry row: its time (ms after t0), type, fields and metadata. */
interface StoredRow {
  t: number
  type: string | null
  data: Record<string, unknown>
  metadata: Record<string, unknown> | null
}

/**
 * Two requests of one device as the line protocol mapping makes them from interleaved series: two
 * measurements, two tag sets whose points share one metadata object each, points without metadata,
 * points of one time (one row, merged), and a second request at some of the first one's times.
 * `stored` is what PostgreSQL must hold once both are written, in time order.
 */
export function mixedSeries(t0: number): { requests: [SentPoint[], SentPoint[]]; stored: StoredRow[] } {
  const edge = { host: 'edge-box' }
  const core = { host: 'core', rack: '2' }
  const site = { site: 'x' }
  const first: SentPoint[] = [
    { t: t0, type: 'cpu', data: { 'cpu.idle': 90 }, metadata: edge },
    { t: t0 + 1, type: 'mem', data: { 'mem.used': 41.5 }, metadata: core },
    { t: t0 + 2, type: 'cpu', data: { 'cpu.idle': 80 } },
    { t: t0 + 3, data: { v: 1 } },
    { t: t0 + 4, type: 'mem', data: { 'mem.used': 40 }, metadata: core },
    { t: t0 + 4, type: 'cpu', data: { 'cpu.idle': 70 }, metadata: edge },
    { t: t0 + 5, type: 'cpu', data: { 'cpu.idle': 60 }, metadata: edge },
    { t: t0 + 6, type: 'mem', data: { 'mem.used': 43 }, metadata: core },
    { t: t0 + 6, type: 'cpu', data: { 'cpu.idle': 50 } },
    { t: t0 + 7, type: 'cpu', data: { 'cpu.idle': 40 }, metadata: edge },
    { t: t0 + 7, type: 'cpu', data: { 'cpu.user': 5 }, metadata: edge },
  ]
  const second: SentPoint[] = [
    { t: t0 + 2, data: { extra: 1 }, metadata: site },
    { t: t0 + 4, type: 'disk', data: { 'disk.used': 3 }, metadata: site },
  ]
  const stored: StoredRow[] = [
    { t: 0, type: 'cpu', data: { 'cpu.idle': 90 }, metadata: edge },
    { t: 1, type: 'mem', data: { 'mem.used': 41.5 }, metadata: core },
    { t: 2, type: 'cpu', data: { 'cpu.idle': 80, extra: 1 }, metadata: site },
    { t: 3, type: null, data: { v: 1 }, metadata: null },
    {
      t: 4,
      type: 'disk',
      data: { 'mem.used': 40, 'cpu.idle': 70, 'disk.used': 3 },
      metadata: { host: 'edge-box', rack: '2', site: 'x' },
    },
    { t: 5, type: 'cpu', data: { 'cpu.idle': 60 }, metadata: edge },
    { t: 6, type: 'cpu', data: { 'mem.used': 43, 'cpu.idle': 50 }, metadata: core },
    { t: 7, type: 'cpu', data: { 'cpu.idle': 40, 'cpu.user': 5 }, metadata: edge },
  ]
  return { requests: [first, second], stored }
}

/**
 * A device batch as store jobs queued before 2026-11-30 carry it: `type` and `metadata` one entry
 * per point. `stored` is what PostgreSQL must hold (times in ms after t0).
 */
export function perPointDeviceBatch(deviceId: number, t0: number) {
  const batch = {
    device_id: deviceId,
    device_type: 'sensor',
    received_at: t0,
    t: [t0, t0 + 1, t0 + 2],
    fields: ['environment.temperature', 'v'],
    values: [
      [21.5, null, 22.5],
      [null, 1, null],
    ],
    type: ['environment', null, 'environment'],
    metadata: [{ host: 'edge-box' }, null, { host: 'edge-box', n: 2 }],
  }
  const stored: StoredRow[] = [
    { t: 0, type: 'environment', data: { 'environment.temperature': 21.5 }, metadata: { host: 'edge-box' } },
    { t: 1, type: null, data: { v: 1 }, metadata: null },
    {
      t: 2,
      type: 'environment',
      data: { 'environment.temperature': 22.5 },
      metadata: { host: 'edge-box', n: 2 },
    },
  ]
  return { batch, stored }
}
