import type { DeviceIdentity } from './devices-repository.js'

interface Entry {
  identity: DeviceIdentity | null
  expiresAt: number
}

/**
 * In-process cache of device identities, so ingest does not query Postgres per request or message.
 * Misses are cached too (briefly), so a flood of bad keys cannot flood the database. Keys are
 * chosen by the caller (the authenticator uses the SHA-256 of an API key, never the key itself).
 */
export class DeviceIdentityCache {
  private readonly entries = new Map<string, Entry>()

  constructor(
    private readonly ttlMs: number,
    private readonly negativeTtlMs: number,
    private readonly maxEntries = 100_000,
  ) {}

  get(key: string, now = Date.now()): DeviceIdentity | null | undefined {
    const entry = this.entries.get(key)
    if (!entry) return undefined
    if (entry.expiresAt <= now) {
      this.entries.delete(key)
      return undefined
    }
    return entry.identity
  }

  set(key: string, identity: DeviceIdentity | null, now = Date.now()): void {
    this.entries.delete(key)
    if (this.entries.size >= this.maxEntries) {
      // Maps iterate in insertion order: the first key is the oldest.
      const oldest = this.entries.keys().next().value
      if (oldest !== undefined) this.entries.delete(oldest)
    }
    this.entries.set(key, { identity, expiresAt: now + (identity ? this.ttlMs : this.negativeTtlMs) })
  }

  /** Forgets every entry of a device (deactivation, key rotation). */
  forgetDevice(deviceId: number): void {
    for (const [key, entry] of this.entries) if (entry.identity?.id === deviceId) this.entries.delete(key)
  }
}
