import {
  deviceColumnsProblem,
  LegacyStoreBatchPayload,
  pointsInPayload,
  type StoreBatchPayload,
  upgradeLegacyStorePayload,
} from '@iotflow/contracts'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { UnrecoverableError } from 'bullmq'
import { type QueueKey, type QueuePayloads, queueCatalog } from './catalog.js'

/** Job data that is not what its queue's schema says: it can never be consumed. */
export class InvalidJobPayloadError extends Error {
  constructor(queue: string, detail: string) {
    super(`a ${queue} job's data does not match its schema: ${detail}`)
    this.name = 'InvalidJobPayloadError'
  }
}

const checkers = Object.fromEntries(
  Object.entries(queueCatalog).map(([key, queue]) => [key, TypeCompiler.Compile(queue.payload)]),
) as unknown as { [K in QueueKey]: ReturnType<typeof TypeCompiler.Compile> }
const legacyStorePayload = TypeCompiler.Compile(LegacyStoreBatchPayload)

/** The queues whose jobs carry device batches, in older shapes too (until LEGACY_POINTS_PAYLOAD_END). */
const carriesStoreBatches: ReadonlySet<QueueKey> = new Set(['storePostgres', 'storeInflux', 'alertEvaluate'])

/** What a job's data was read as, while the job still holds that same data. */
const read = new WeakMap<object, { data: unknown; payload: unknown }>()

/**
 * A job's data as its queue's schema says, where a job enters a consumer: checked, and a store job
 * queued in an older shape (points, or per-point `type` and `metadata`) upgraded: the one place those
 * shapes are still accepted. Read once per job and data; throws InvalidJobPayloadError for data no
 * consumer can use.
 */
export function payloadOf<K extends QueueKey>(key: K, job: { data: unknown }): QueuePayloads[K] {
  const cached = read.get(job)
  if (cached && cached.data === job.data) return cached.payload as QueuePayloads[K]
  const checker = checkers[key]
  let payload: unknown
  if (checker.Check(job.data)) payload = job.data
  else if (carriesStoreBatches.has(key) && legacyStorePayload.Check(job.data))
    payload = upgradeLegacyStorePayload(job.data) satisfies StoreBatchPayload
  else {
    const [first] = checker.Errors(job.data)
    throw new InvalidJobPayloadError(
      queueCatalog[key].name,
      first ? `${first.path || '/'}: ${first.message}` : 'invalid',
    )
  }
  if (carriesStoreBatches.has(key)) {
    const { batches } = payload as StoreBatchPayload
    for (let b = 0; b < batches.length; b++) {
      const problem = deviceColumnsProblem(batches[b] as StoreBatchPayload['batches'][number])
      if (problem) throw new InvalidJobPayloadError(queueCatalog[key].name, `/batches/${b}/${problem}`)
    }
  }
  read.set(job, { data: job.data, payload })
  return payload as QueuePayloads[K]
}

/**
 * payloadOf in a BullMQ processor: data no consumer can use fails its job for good (UnrecoverableError:
 * it waits in the dead-letter set) instead of spending every retry on it.
 */
export function processedPayloadOf<K extends QueueKey>(key: K, job: { data: unknown }): QueuePayloads[K] {
  try {
    return payloadOf(key, job)
  } catch (error) {
    if (error instanceof InvalidJobPayloadError) throw new UnrecoverableError(error.message)
    throw error
  }
}

/**
 * A store job's payload as a consumer reads it (an older shape upgraded); undefined when its data is
 * invalid (no consumer can store it). Both store queues' payloads have one schema.
 */
export function storePayloadOf(job: { data: unknown }): StoreBatchPayload | undefined {
  try {
    return payloadOf('storePostgres', job)
  } catch (error) {
    if (error instanceof InvalidJobPayloadError) return undefined
    throw error
  }
}

/** The points a store job carries, read as a consumer reads it; none when its data is invalid. */
export function pointsOfStoreJob(job: { data: unknown }): number {
  const payload = storePayloadOf(job)
  return payload ? pointsInPayload(payload) : 0
}
