import { gunzip } from 'node:zlib'
import { httpError } from './http-error.js'

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * A line protocol body as text: gunzipped when `Content-Encoding: gzip` (Telegraf's default), with
 * the decompressed size bounded by `limit` bytes as the raw body is (413 beyond it, so a small
 * gzip bomb cannot fill the memory), and strictly UTF-8.
 */
export async function lineProtocolText(
  body: Buffer,
  contentEncoding: string | undefined,
  limit: number,
): Promise<string> {
  const encoding = contentEncoding?.trim().toLowerCase()
  let bytes = body
  if (encoding === 'gzip' || encoding === 'x-gzip') bytes = await gunzipBounded(body, limit)
  else if (encoding && encoding !== 'identity') {
    throw httpError(415, `Content-Encoding ${encoding} is not supported; send gzip or none`)
  }
  try {
    return utf8.decode(bytes)
  } catch {
    throw httpError(400, 'the body is not valid UTF-8')
  }
}

/** Node's default output chunk, and the largest one taken (per body decompressing at once). */
const MIN_CHUNK_BYTES = 16 * 1024
const MAX_CHUNK_BYTES = 1024 * 1024

function gunzipBounded(body: Buffer, limit: number): Promise<Buffer> {
  // Output chunks about the size line protocol decompresses to (8 times the gzip, roughly), not
  // Node's 16 KiB: each chunk is a round trip to the thread pool and a callback, and a 5,000-line
  // body took 30 of them, twice the CPU of decompressing it in two (docs/benchmarks.md).
  const chunkSize = Math.min(MAX_CHUNK_BYTES, Math.max(MIN_CHUNK_BYTES, body.length * 8))
  return new Promise((resolve, reject) => {
    gunzip(body, { maxOutputLength: limit, chunkSize }, (error, result) => {
      if (!error) return resolve(result)
      if (error instanceof RangeError || (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        return reject(
          httpError(413, `the body is more than ${limit} bytes once decompressed; split the batch`),
        )
      }
      reject(httpError(400, `the body is not valid gzip: ${error.message}`))
    })
  })
}
