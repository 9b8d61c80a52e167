import { describe, expect, it } from 'vitest'
import { backlogKey } from './backlog/backlog.js'
import { bullPrefix } from './catalog.js'
import {
  allPartitions,
  partitionOfDevice,
  partitionPrefix,
  qualifiedByPartition,
  queueLayout,
  queueLayoutOf,
  unqualified,
} from './partitions.js'

describe('queue partitions', () => {
  it('with one partition (the default), keep the key names from before partitions', () => {
    const layout = queueLayoutOf({ QUEUE_PREFIX: 'iotflow' })
    expect(layout).toEqual({ prefix: 'iotflow', partitions: 1 })
    expect(allPartitions(layout)).toEqual([0])
    expect(partitionPrefix(layout, 0)).toBe('iotflow')
    expect(bullPrefix(partitionPrefix(layout, 0))).toBe('{iotflow}')
    expect(backlogKey(partitionPrefix(layout, 0))).toBe('{iotflow}:backlog')
    for (const device of [0, 1, 7, 123_456_789]) expect(partitionOfDevice(layout, device)).toBe(0)
    expect(qualifiedByPartition(layout, 0, '42')).toBe('42')
    expect(unqualified(layout, '42')).toEqual({ partition: 0, text: '42' })
  })

  it('give partition k the hash tag {<prefix>:p<k>}', () => {
    const layout = queueLayoutOf({ QUEUE_PREFIX: 'fleet', QUEUE_PARTITIONS: 6 })
    expect(allPartitions(layout)).toEqual([0, 1, 2, 3, 4, 5])
    expect(allPartitions(layout).map((k) => bullPrefix(partitionPrefix(layout, k)))).toEqual([
      '{fleet:p0}',
      '{fleet:p1}',
      '{fleet:p2}',
      '{fleet:p3}',
      '{fleet:p4}',
      '{fleet:p5}',
    ])
    expect(backlogKey(partitionPrefix(layout, 3))).toBe('{fleet:p3}:backlog')
    expect(() => partitionPrefix(layout, 6)).toThrow('partition 6 does not exist: QUEUE_PARTITIONS is 6')
    expect(() => queueLayout('fleet', 0)).toThrow(RangeError)
  })

  it('send a device always to the same partition: FNV-1a of its decimal id, mod N', () => {
    const layout = queueLayout('fleet', 6)
    // FNV-1a 32 of "1" is 0x340ca71c, of "2" 0x370cabd5, of "1000" 0x2297cac4 (as Python computes them).
    expect(partitionOfDevice(layout, 1)).toBe(0x340ca71c % 6)
    expect(partitionOfDevice(layout, 2)).toBe(0x370cabd5 % 6)
    expect(partitionOfDevice(layout, 1000)).toBe(0x2297cac4 % 6)
    for (let device = 1; device <= 1000; device++)
      expect(partitionOfDevice(layout, device)).toBe(partitionOfDevice(queueLayout('other', 6), device))
  })

  it('spread devices evenly, sequential ids and ids in steps alike', () => {
    for (const step of [1, 6, 10]) {
      const layout = queueLayout('fleet', 6)
      const counts = new Map<number, number>()
      for (let i = 1; i <= 60_000; i++) {
        const partition = partitionOfDevice(layout, i * step)
        counts.set(partition, (counts.get(partition) ?? 0) + 1)
      }
      expect([...counts.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5])
      // 10,000 each if perfectly even: every partition within 10% of it.
      for (const count of counts.values()) expect(Math.abs(count - 10_000)).toBeLessThan(1_000)
    }
  })

  it('qualify job ids by partition when there are several, and read them back', () => {
    const layout = queueLayout('fleet', 4)
    expect(qualifiedByPartition(layout, 3, '42')).toBe('p3/42')
    expect(unqualified(layout, 'p3/42')).toEqual({ partition: 3, text: '42' })
    expect(unqualified(layout, 'p4/42')).toBeUndefined()
    expect(unqualified(layout, '42')).toBeUndefined()
  })
})
