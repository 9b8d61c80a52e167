import { storePayloadOf } from '@iotflow/queue'
import { Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import type { LevelBatches } from './manifest.js'
import { RefusedError } from './refused-error.js'

/** Per store queue, its jobs' payloads: each read as a writer reads a job (storePayloadOf). */
const LevelBatchesFile = Type.Record(Type.String(), Type.Array(Type.Unknown()))

/**
 * The level file's content (`parsed` from `file`) as the restore writes it: each payload read as a
 * writer reads a job, so a backup taken before a change of the payload (a type and metadata per
 * point, before 2026-11-30) is upgraded as its queued jobs would be. Refuses anything else.
 */
export function levelBatchesOf(parsed: unknown, file: string): LevelBatches {
  const problem = Value.Errors(LevelBatchesFile, parsed).First()
  if (problem) throw new RefusedError(`${file}: ${problem.path || '/'} ${problem.message}`)
  const batches: LevelBatches = {}
  for (const [name, payloads] of Object.entries(parsed as Record<string, unknown[]>)) {
    batches[name] = payloads.map((data, i) => {
      const payload = storePayloadOf({ data })
      if (!payload) throw new RefusedError(`${file}: /${name}/${i} is not a store job's payload`)
      return payload
    })
  }
  return batches
}
