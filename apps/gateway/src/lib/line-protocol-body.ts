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

function gunzipBounded(body: Buffer, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    gunzip(body, { maxOutputLength: limit }, (error, result) => {
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
