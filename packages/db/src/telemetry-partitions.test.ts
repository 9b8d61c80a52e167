import { describe, expect, it } from 'vitest'
import { telemetryPartitionOf, telemetryPartitionsOf } from './telemetry-partitions.js'

describe("telemetry's day partitions", () => {
  it('names a point time by its UTC day, across midnight and before 1970', () => {
    expect(telemetryPartitionOf(Date.UTC(2026, 10, 20, 23, 59, 59, 999))).toBe('telemetry_p20261120')
    expect(telemetryPartitionOf(Date.UTC(2026, 10, 21))).toBe('telemetry_p20261121')
    expect(telemetryPartitionOf(-1)).toBe('telemetry_p19691231')
  })

  it('lists the partitions of batches once each, in day order', () => {
    const midnight = Date.UTC(2026, 10, 21)
    expect(
      telemetryPartitionsOf([
        { device_id: 1, received_at: 0, t: [midnight, midnight - 1], fields: [], values: [] },
        { device_id: 2, received_at: 0, t: [midnight + 5], fields: ['a'], values: [[1]] },
      ]),
    ).toEqual(['telemetry_p20261120', 'telemetry_p20261121'])
  })
})
