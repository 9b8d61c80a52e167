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
    private readonly staleIfErrorMs = 15 * 60_000,
    private readonly maxEntries = 100_000,
  ) {}

  /** The cached answer while it is fresh; undefined once it has expired (ask Postgres again). */
  get(key: string, now = Date.now()): DeviceIdentity | null | undefined {
    const entry = this.entries.get(key)
    if (!entry || entry.expiresAt <= now) return undefined
    return entry.identity
  }

  /**
   * A known device's identity even if expired, up to `staleIfErrorMs` past expiry: used only while
   * Postgres cannot be asked, so that its outage does not stop ingest from known devices.
   */
  getStale(key: string, now = Date.now()): DeviceIdentity | undefined {
    const entry = this.entries.get(key)
    if (!entry?.identity) return undefined
    if (entry.expiresAt + this.staleIfErrorMs <= now) {
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
