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
  /** How long a lookup may take before Postgres counts as unreachable. */
  lookupDeadlineMs?: number
}

/** Postgres could not be asked and the device is not known from before: retry later (503). */
export class DeviceRegistryUnavailableError extends Error {
  constructor(options: { cause: unknown }) {
    super('the device registry is unavailable', options)
    this.name = 'DeviceRegistryUnavailableError'
  }
}

const NEGATIVE_CACHE_MS = 5_000
const LOOKUP_DEADLINE_MS = 2_000

/**
 * Who is sending, for the gateway (X-API-Key) and the MQTT bridge (`api_key` in the payload, or a
 * device id the broker authenticated). Identities are cached by key hash and by id; while Postgres is
 * down a recently known device is still admitted, and an unknown one is refused with
 * DeviceRegistryUnavailableError (the caller answers 503 or retries).
 */
export function createDeviceAuthenticator({
  devices,
  ttlMs,
  negativeTtlMs = NEGATIVE_CACHE_MS,
  lookupDeadlineMs = LOOKUP_DEADLINE_MS,
}: DeviceAuthenticatorOptions) {
  const cache = new DeviceIdentityCache(ttlMs, negativeTtlMs)

  async function cached(key: string, find: () => Promise<DeviceIdentity | undefined>) {
    const fresh = cache.get(key)
    if (fresh !== undefined) return fresh
    try {
      // The client queues queries while Postgres is away: the wait is bounded.
      const identity = (await withinDeadline(find(), lookupDeadlineMs)) ?? null
      cache.set(key, identity)
      return identity
    } catch (cause) {
      // Postgres unreachable: a device seen recently keeps sending (ingest needs only Redis); an
      // unknown one is told to come back later, never admitted and never answered with a 500.
      const stale = cache.getStale(key)
      if (stale) return stale
      throw new DeviceRegistryUnavailableError({ cause })
    }
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

function withinDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`device lookup took more than ${ms} ms`)), ms)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}
