import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

const KEY_PREFIX = 'iot_'
const PREFIX_SHOWN = KEY_PREFIX.length + 8

export interface NewApiKey {
  /** Shown to the caller once, never stored. */
  key: string
  hash: Buffer
  prefix: string
}

/** 32 random bytes: a fast hash is safe at rest because the key cannot be guessed from a dictionary. */
export function generateApiKey(): NewApiKey {
  const key = KEY_PREFIX + randomBytes(32).toString('base64url')
  return { key, hash: hashApiKey(key), prefix: key.slice(0, PREFIX_SHOWN) }
}

export const hashApiKey = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest()

/** Constant-time comparison of two key hashes. */
export function sameKeyHash(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}
