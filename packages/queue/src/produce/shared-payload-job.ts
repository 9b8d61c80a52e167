import { Job } from 'bullmq'

/** Serialized job data by data object: the store jobs of one flow carry the same payload object. */
const serialized = new WeakMap<object, string>()

/**
 * A data object as JSON, stringified once however many jobs (or the alert stream's entry) carry it:
 * the first caller stringifies, the others reuse the text.
 */
export function serializedOnce(data: object): string {
  let text = serialized.get(data)
  if (text === undefined) {
    text = JSON.stringify(data)
    serialized.set(data, text)
  }
  return text
}

/**
 * A Job that serializes a data object once however many jobs carry it. BullMQ stringifies each job's
 * data as it adds it; a batch fanned out to both store queues would be stringified twice, and on a
 * 1,000-point batch that second copy is a measurable share of the gateway's CPU.
 */
export class SharedPayloadJob extends Job {
  override asJSON() {
    const data = this.data as unknown
    if (typeof data !== 'object' || data === null) return super.asJSON()
    const text = serializedOnce(data)
    // super.asJSON() stringifies `data` itself: hand it an empty one and put the shared text in.
    this.data = undefined
    try {
      return { ...super.asJSON(), data: text }
    } finally {
      this.data = data
    }
  }
}
