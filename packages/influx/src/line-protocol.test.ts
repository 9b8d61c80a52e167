import { describe, expect, it } from 'vitest'
import { batchToLines } from './line-protocol.js'

const batch = (points: { t: number; type?: string; data: Record<string, number | boolean | string> }[]) => ({
  batch_id: 'b',
  device_id: 7,
  device_type: 'sensor',
  received_at: 0,
  points,
})

describe('batchToLines', () => {
  it('writes every number as a float, so 50 and 50.5 are one field type', () => {
    expect(
      batchToLines(
        batch([
          { t: 1000, data: { humidity: 50 } },
          { t: 1001, data: { humidity: 50.5 } },
        ]),
      ),
    ).toEqual([
      'telemetry,device_id=7,device_type=sensor humidity=50 1000',
      'telemetry,device_id=7,device_type=sensor humidity=50.5 1001',
    ])
  })

  it('writes booleans and strings with their own types, and the type tag when sent', () => {
    expect(batchToLines(batch([{ t: 5, type: 'sensors', data: { on: true, mode: 'eco' } }]))).toEqual([
      'telemetry,device_id=7,device_type=sensor,type=sensors mode="eco",on=T 5',
    ])
  })

  it('escapes names and values that line protocol treats specially', () => {
    const [line] = batchToLines(
      batch([{ t: 1, type: 'a b,c=d', data: { 'field name,x=y': 'say "hi" \\ ok' } }]),
    )
    expect(line).toBe(
      'telemetry,device_id=7,device_type=sensor,type=a\\ b\\,c\\=d field\\ name\\,x\\=y="say \\"hi\\" \\\\ ok" 1',
    )
  })
})
