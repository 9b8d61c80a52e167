import { ConfigError } from './parse-env.js'

/** WRITER_PARTITIONS's shape: numbers and ranges, comma-separated (`0-3`, `0,2,5`, `0-1,4`). */
export const PARTITION_LIST_PATTERN = '^\\s*\\d+(\\s*-\\s*\\d+)?(\\s*,\\s*\\d+(\\s*-\\s*\\d+)?)*\\s*$'

/** The variables `writerPartitionsOf` reads. */
export interface WriterPartitionsEnv {
  QUEUE_PARTITIONS: number
  WRITER_PARTITIONS?: string | undefined
}

/**
 * The queue partitions a writer (or the alert evaluator) consumes, ascending: WRITER_PARTITIONS's,
 * or every one of QUEUE_PARTITIONS when it is unset. A ConfigError names WRITER_PARTITIONS when it
 * names a partition that does not exist or a range backwards.
 */
export function writerPartitionsOf(config: WriterPartitionsEnv): number[] {
  const count = config.QUEUE_PARTITIONS
  const text = config.WRITER_PARTITIONS
  if (text === undefined || text.trim() === '') return Array.from({ length: count }, (_, k) => k)
  const fail = (message: string): never => {
    throw new ConfigError([
      { variable: 'WRITER_PARTITIONS', message: `${message}, got ${JSON.stringify(text)}` },
    ])
  }
  if (!new RegExp(PARTITION_LIST_PATTERN).test(text))
    fail('expected partition numbers and ranges, comma-separated (0-3 or 0,2,5)')
  const chosen = new Set<number>()
  for (const item of text.split(',')) {
    const [from, to = from] = item.split('-').map((bound) => Number(bound.trim())) as [number, number?]
    if (to < from) fail(`the range ${item.trim()} runs backwards`)
    if (to >= count)
      fail(`partition ${to} does not exist: QUEUE_PARTITIONS is ${count} (partitions 0 to ${count - 1})`)
    for (let k = from; k <= to; k++) chosen.add(k)
  }
  return [...chosen].sort((a, b) => a - b)
}
