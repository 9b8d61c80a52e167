import { describe, expect, it } from 'vitest'
import { loadWriterInfluxConfig, loadWriterPostgresConfig } from './apps.js'
import { ConfigError } from './parse-env.js'
import { writerPartitionsOf } from './writer-partitions.js'

/** The ConfigError message `load` throws, or undefined when it loads. */
const problemOf = (load: () => unknown) => {
  try {
    load()
    return undefined
  } catch (error) {
    if (error instanceof ConfigError) return error.message
    throw error
  }
}

describe('WRITER_PARTITIONS', () => {
  it('is every partition of QUEUE_PARTITIONS when unset or empty', () => {
    expect(writerPartitionsOf({ QUEUE_PARTITIONS: 1 })).toEqual([0])
    expect(writerPartitionsOf({ QUEUE_PARTITIONS: 6 })).toEqual([0, 1, 2, 3, 4, 5])
    expect(writerPartitionsOf({ QUEUE_PARTITIONS: 3, WRITER_PARTITIONS: ' ' })).toEqual([0, 1, 2])
  })

  it('reads ranges, lists and both together, ascending and once each', () => {
    expect(writerPartitionsOf({ QUEUE_PARTITIONS: 8, WRITER_PARTITIONS: '0-3' })).toEqual([0, 1, 2, 3])
    expect(writerPartitionsOf({ QUEUE_PARTITIONS: 8, WRITER_PARTITIONS: '0,2,5' })).toEqual([0, 2, 5])
    expect(writerPartitionsOf({ QUEUE_PARTITIONS: 8, WRITER_PARTITIONS: ' 6 , 0-1,1 - 2,7' })).toEqual([
      0, 1, 2, 6, 7,
    ])
    expect(writerPartitionsOf({ QUEUE_PARTITIONS: 8, WRITER_PARTITIONS: '4-4' })).toEqual([4])
  })

  it('refuses a partition that does not exist or a range backwards, naming the variable', () => {
    expect(() => writerPartitionsOf({ QUEUE_PARTITIONS: 4, WRITER_PARTITIONS: '0-4' })).toThrow(
      'WRITER_PARTITIONS: partition 4 does not exist: QUEUE_PARTITIONS is 4 (partitions 0 to 3), got "0-4"',
    )
    expect(() => writerPartitionsOf({ QUEUE_PARTITIONS: 4, WRITER_PARTITIONS: '3-1' })).toThrow(
      'WRITER_PARTITIONS: the range 3-1 runs backwards',
    )
    expect(() => writerPartitionsOf({ QUEUE_PARTITIONS: 4, WRITER_PARTITIONS: 'p1' })).toThrow(
      'WRITER_PARTITIONS: expected partition numbers and ranges',
    )
  })

  it('is checked when a writer loads its config, with QUEUE_PARTITIONS', () => {
    const influx = { INFLUX_API: 'v1', INFLUX_DATABASE: 'iotflow' }
    expect(
      problemOf(() => loadWriterPostgresConfig({ QUEUE_PARTITIONS: '6', WRITER_PARTITIONS: '0-2' })),
    ).toBe(undefined)
    expect(loadWriterPostgresConfig({}).QUEUE_PARTITIONS).toBe(1)
    expect(problemOf(() => loadWriterPostgresConfig({ WRITER_PARTITIONS: '1' }))).toContain(
      'WRITER_PARTITIONS: partition 1 does not exist: QUEUE_PARTITIONS is 1',
    )
    expect(
      problemOf(() => loadWriterInfluxConfig({ ...influx, QUEUE_PARTITIONS: '4', WRITER_PARTITIONS: '0;1' })),
    ).toContain('WRITER_PARTITIONS: ')
    expect(problemOf(() => loadWriterPostgresConfig({ QUEUE_PARTITIONS: '0' }))).toContain('QUEUE_PARTITIONS')
  })
})
