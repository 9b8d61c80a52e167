import { hashApiKey, sameKeyHash } from './api-keys.js'
import { DeviceIdentityCache } from './device-identity-cache.js'
import type { DeviceIdentity, DevicesRepository } from './devices-repository.js'

export type DeviceAuthentication =
  | { ok: true; device: DeviceIdentity }
  | { ok: false; status: 401 | 403; message: string }

export interface DeviceAuthenticatorOptions {
  devices: Pick<DevicesRepository, 'findIdentityByKeyHash' | 'findIdentityById'>
  /** How long a known device is trusted without asking Postgres again. */
  ttlMs: number
  negativeTtlMs?: number
}

const NEGATIVE_CACHE_MS = 5_000

/**
 * Who is sending, for the gateway (X-API-Key) and the MQTT bridge (`api_key` in the payload, or a
 * device id the broker authenticated). Identities are cached by key hash and by id; a lookup that
 * fails because Postgres is down rejects (the caller answers 503 or retries), it never admits.
 */
export function createDeviceAuthenticator({
  devices,
  ttlMs,
  negativeTtlMs = NEGATIVE_CACHE_MS,
}: DeviceAuthenticatorOptions) {
  const cache = new DeviceIdentityCache(ttlMs, negativeTtlMs)

  async function cached(key: string, find: () => Promise<DeviceIdentity | undefined>) {
    let identity = cache.get(key)
    if (identity === undefined) {
      identity = (await find()) ?? null
      cache.set(key, identity)
    }
    return identity
  }

  const verdict = (identity: DeviceIdentity): DeviceAuthentication =>
    identity.status === 'active'
      ? { ok: true, device: identity }
      : { ok: false, status: 403, message: 'this device is inactive' }

  return {
    cache,

    /** The device an API key belongs to (compared in constant time). */
    async byApiKey(apiKey: string): Promise<DeviceAuthentication> {
      const hash = hashApiKey(apiKey)
      const identity = await cached(`key:${hash.toString('base64')}`, () =>
        devices.findIdentityByKeyHash(hash),
      )
      if (!identity || !sameKeyHash(identity.api_key_hash, hash)) {
        return { ok: false, status: 401, message: 'unknown API key' }
      }
      return verdict(identity)
    },

    /** A device the broker already authenticated: it must exist and be active. */
    async byId(deviceId: number): Promise<DeviceAuthentication> {
      const identity = await cached(`id:${deviceId}`, () => devices.findIdentityById(deviceId))
      if (!identity) return { ok: false, status: 401, message: `unknown device ${deviceId}` }
      return verdict(identity)
    },
  }
}

export type DeviceAuthenticator = ReturnType<typeof createDeviceAuthenticator>
