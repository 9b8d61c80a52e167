import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** Device keys start `iot_`, edge gateway keys `iotgw_`: a leaked key says what it is. */
export const DEVICE_KEY_PREFIX = 'iot_'
export const GATEWAY_KEY_PREFIX = 'iotgw_'
const SHOWN_CHARACTERS = 8

export interface NewApiKey {
  /** Shown to the caller once, never stored. */
  key: string
  hash: Buffer
  prefix: string
}

/** 32 random bytes: a fast hash is safe at rest because the key cannot be guessed from a dictionary. */
export function generateApiKey(kind: string = DEVICE_KEY_PREFIX): NewApiKey {
  const key = kind + randomBytes(32).toString('base64url')
  return { key, hash: hashApiKey(key), prefix: key.slice(0, kind.length + SHOWN_CHARACTERS) }
}

export const hashApiKey = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest()

/** Constant-time comparison of two key hashes. */
export function sameKeyHash(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}
