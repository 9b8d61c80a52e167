import secureJson from 'secure-json-parse'
import type { ErrorDetail } from './errors.js'
import { BODY } from './paths.js'

export type JsonBodyResult =
  | { ok: true; value: unknown }
  | { ok: false; message: string; errors: ErrorDetail[] }

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * A request body (HTTP) or message payload (MQTT) as JSON, strictly: invalid UTF-8, an empty body,
 * malformed JSON and prototype-polluting keys (`__proto__`, `constructor.prototype`) are each
 * refused with a reason, never repaired silently.
 */
export function parseJsonBody(body: Uint8Array): JsonBodyResult {
  if (body.length === 0) return refused('is empty; send a JSON object or array')
  let text: string
  try {
    text = utf8.decode(body)
  } catch {
    return refused('is not valid UTF-8')
  }
  try {
    return {
      ok: true,
      value: secureJson.parse(text, null, { protoAction: 'error', constructorAction: 'error' }),
    }
  } catch (error) {
    const message = (error as Error).message
    if (/forbidden prototype property/.test(message)) {
      return refused('contains a forbidden "__proto__" or "constructor.prototype" key')
    }
    if (error instanceof RangeError) return refused('is nested too deeply')
    return refused(`is not valid JSON: ${message}`)
  }
}

function refused(problem: string): JsonBodyResult {
  return { ok: false, message: `the body ${problem}`, errors: [{ path: BODY, message: problem }] }
}
