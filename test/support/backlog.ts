import type { Pipeline } from './pipeline.js'

/**
 * Sends batches of `pointsPerRequest` points of one device, one request after another, until the
 * gateway refuses one with 503 (the backlog reached its bound). Resolves with the timestamps of
 * every acknowledged point and the refusal. Any other answer fails.
 */
export async function sendUntilRefused(
  pipeline: Pipeline,
  apiKey: string,
  firstTime: number,
  options: { pointsPerRequest?: number; maxRequests?: number } = {},
) {
  const { pointsPerRequest = 100, maxRequests = 1000 } = options
  const acknowledged: number[] = []
  for (let request = 0; request < maxRequests; request++) {
    const times = Array.from(
      { length: pointsPerRequest },
      (_, i) => firstTime + (request * pointsPerRequest + i) * 1000,
    )
    const response = await pipeline.send(apiKey, {
      points: times.map((timestamp) => ({ timestamp, data: { t: timestamp } })),
    })
    if (response.status === 503) return { acknowledged, refusal: response }
    if (response.status !== 202)
      throw new Error(`expected 202 or 503, got ${response.status}: ${await response.text()}`)
    acknowledged.push(...times)
  }
  throw new Error(`the gateway still accepted after ${maxRequests} requests`)
}
