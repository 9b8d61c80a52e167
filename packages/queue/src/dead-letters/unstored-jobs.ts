import type { StoreBatchPayload } from '@iotflow/contracts'
import { Job, Queue } from 'bullmq'
import { bullPrefix, queueCatalog, storeQueues } from '../catalog.js'
import { pointsOfStoreJob, storePayloadOf } from '../job-payloads.js'
import {
  allPartitions,
  partitionPrefix,
  type QueueLayout,
  qualifiedByPartition,
  unqualified,
} from '../partitions.js'
import { onSharedConnection, type RedisConnection } from '../redis/connection.js'

/** The states of a store job whose points are not stored yet; `failed` is a dead letter. */
const UNSTORED_STATES = ['wait', 'paused', 'active', 'delayed', 'prioritized', 'failed'] as const
/** Unstored but still to be stored by the writers (a dead letter waits for a replay instead). */
const QUEUED_STATES = UNSTORED_STATES.filter((state) => state !== 'failed')

/** Batches one store holds and another does not yet: per store queue, what it lacks. */
export interface UnevenBatches {
  /** Per store queue: the store jobs (id and payload) whose batch every other store has stored. */
  lacking: Record<string, { id: string; payload: StoreBatchPayload }[]>
}

/**
 * Which acknowledged points are not stored yet, job by job, in each store queue over every queue
 * partition: what a backup needs to say what it holds (it holds the writers with writer-hold.ts). A
 * store job is removed once its batch is committed (or kept as completed), so a job that is gone was
 * stored; one in the failed set was not (it waits for a replay). Results are per store queue name;
 * job ids are qualified by their partition when there are several (qualifiedByPartition).
 */
export function createUnstoredJobs(connection: RedisConnection, layout: QueueLayout) {
  // Per store queue name, its queue in each partition (by partition number).
  const queues = new Map(
    storeQueues.map((key) => {
      const name = queueCatalog[key].name
      const partitions = allPartitions(layout).map(
        (partition) =>
          new Queue<StoreBatchPayload>(name, {
            connection,
            prefix: bullPrefix(partitionPrefix(layout, partition)),
            ...onSharedConnection,
          }),
      )
      return [name as string, partitions]
    }),
  )
  const queuesNamed = (name: string) => {
    const partitions = queues.get(name)
    if (!partitions) throw new Error(`not a store queue: ${name}`)
    return partitions
  }
  /** The job a qualified id names, in its partition's queue; undefined for an id of no partition. */
  const jobOf = (name: string, id: string) => {
    const where = unqualified(layout, id)
    const queue = where && queuesNamed(name)[where.partition]
    return where && queue ? { queue, id: where.text } : undefined
  }
  /** Jobs of every partition of a store queue, with their qualified ids. */
  const qualifiedIds = async (name: string, read: (queue: Queue<StoreBatchPayload>) => Promise<string[]>) =>
    (
      await Promise.all(
        queuesNamed(name).map(async (queue, partition) =>
          (await read(queue)).map((id) => qualifiedByPartition(layout, partition, id)),
        ),
      )
    ).flat()
  async function unstoredIdsNow(): Promise<Record<string, string[]>> {
    const entries = await Promise.all(
      [...queues.keys()].map(async (name) => [
        name,
        await qualifiedIds(name, (queue) => queue.getRanges([...UNSTORED_STATES], 0, -1)),
      ]),
    )
    return Object.fromEntries(entries)
  }
  return {
    /** Every store queue's unstored job ids now (one script per queue, so no job is missed moving). */
    ids: unstoredIdsNow,

    /** Of `ids`, those still unstored, with their state (`failed`: a dead letter, waiting for a replay). */
    async stillUnstored(queueName: string, ids: readonly string[]): Promise<Map<string, string>> {
      const states = await Promise.all(
        ids.map((id) => {
          const job = jobOf(queueName, id)
          return job ? job.queue.getJobState(job.id) : 'unknown'
        }),
      )
      const unstored = new Map<string, string>()
      ids.forEach((id, i) => {
        const state = states[i] as string
        if (state !== 'completed' && state !== 'unknown') unstored.set(id, state)
      })
      return unstored
    },

    /** The points the jobs `ids` carry (a job gone since counts none: it was stored). */
    async pointsOf(queueName: string, ids: readonly string[]): Promise<number> {
      const jobs = await Promise.all(
        ids.map((id) => {
          const job = jobOf(queueName, id)
          return job ? Job.fromId<StoreBatchPayload>(job.queue, job.id) : undefined
        }),
      )
      return jobs.reduce((sum, job) => sum + (job ? pointsOfStoreJob(job) : 0), 0)
    },

    /**
     * The batches one store has stored and another has not: a job queued (not a dead letter) in one
     * store queue whose batch (its flow, one job per store queue, named by batch_id) has no unstored
     * job in any other. Taken while the writers are held, it says what each store of a backup
     * lacks; with the writers running it is a moment's guess.
     */
    async unevenBatches(): Promise<UnevenBatches> {
      // Ingest goes on during a hold: a flow added between the reads of two store queues would
      // look stored by the queue read first. Every store queue's unstored ids are read again once
      // all were read: a job queued at the first read is still unstored at the second (the writers
      // are held), and a batch with a job in the first read has its other jobs, if unstored, in the
      // second. Only jobs the first read did not see (dead letters, new flows) are fetched.
      const queued = await Promise.all(
        [...queues].map(async ([name, partitions]) => {
          const read = await Promise.all(
            partitions.map(async (queue, partition) =>
              (await queue.getJobs([...QUEUED_STATES], 0, -1))
                .filter((job): job is Job<StoreBatchPayload> => Boolean(job?.id && job.data))
                .map((job) => ({ id: qualifiedByPartition(layout, partition, job.id as string), job })),
            ),
          )
          return { name, jobs: read.flat() }
        }),
      )
      const batchOfJob = new Map(
        queued.flatMap(({ name, jobs }) => jobs.map(({ id, job }) => [`${name}/${id}`, job.data.batch_id])),
      )
      const unstoredIds = await unstoredIdsNow()
      const unstored = new Map(
        await Promise.all(
          Object.entries(unstoredIds).map(async ([name, ids]) => {
            const batches = await Promise.all(
              ids.map(async (id) => {
                const known = batchOfJob.get(`${name}/${id}`)
                if (known !== undefined) return known
                const where = jobOf(name, id)
                const job = where && (await Job.fromId<StoreBatchPayload>(where.queue, where.id))
                return job?.data?.batch_id
              }),
            )
            return [name, new Set(batches)] as const
          }),
        ),
      )
      const lacking: UnevenBatches['lacking'] = {}
      for (const { name, jobs } of queued) {
        const others = [...unstored].filter(([other]) => other !== name).map(([, batches]) => batches)
        // As a writer would read it (an older shape upgraded): what the restore writes. A job no
        // writer can read is left out, and so stays among the points the backup does not hold.
        lacking[name] = jobs
          .filter(({ job }) => others.every((batches) => !batches.has(job.data.batch_id)))
          .flatMap(({ id, job }) => {
            const payload = storePayloadOf(job)
            return payload ? [{ id, payload }] : []
          })
      }
      return { lacking }
    },

    /** Writers connected to each store queue (BullMQ's CLIENT LIST of its workers), over all partitions. */
    async writersConnected(): Promise<Record<string, number>> {
      const entries = await Promise.all(
        [...queues].map(async ([name, partitions]) => {
          const counts = await Promise.all(partitions.map((queue) => queue.getWorkersCount()))
          return [name, counts.reduce((sum, n) => sum + n, 0)] as const
        }),
      )
      return Object.fromEntries(entries)
    },

    close: () => Promise.all([...queues.values()].flat().map((q) => q.close())).then(() => undefined),
  }
}

export type UnstoredJobs = ReturnType<typeof createUnstoredJobs>
