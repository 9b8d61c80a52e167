import type {
  Device,
  DeviceCreateBody,
  DeviceListQuery,
  DeviceUpdateBody,
  RateLimit,
} from '@iotflow/contracts'
import { generateApiKey } from './api-keys.js'
import type { Sql } from './client.js'

/** What authentication needs to know about a device, and all the ingest path reads. */
export interface DeviceIdentity {
  id: number
  device_type: string
  status: 'active' | 'inactive'
  api_key_hash: Buffer
  /** Its own rate limit; null: the configured defaults. */
  rate_limit: RateLimit | null
}

export class DuplicateDeviceNameError extends Error {
  constructor(name: string) {
    super(`a device named "${name}" already exists`)
    this.name = 'DuplicateDeviceNameError'
  }
}

interface DeviceRow {
  id: number
  name: string
  device_type: string
  description: string | null
  location: string | null
  firmware_version: string | null
  hardware_version: string | null
  metadata: Record<string, unknown>
  status: 'active' | 'inactive'
  api_key_prefix: string
  created_at: Date
  updated_at: Date
  last_seen: Date | null
  rate_limit: RateLimit | null
}

const toDevice = (row: DeviceRow): Device => ({
  ...row,
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString(),
  last_seen: row.last_seen ? row.last_seen.toISOString() : null,
})

const DEVICE_COLUMNS = [
  'id',
  'name',
  'device_type',
  'description',
  'location',
  'firmware_version',
  'hardware_version',
  'metadata',
  'status',
  'api_key_prefix',
  'created_at',
  'updated_at',
  'last_seen',
  'rate_limit',
] as const

export function createDevicesRepository(sql: Sql) {
  return {
    /** Registers a device; returns it with its API key, which is never readable again. */
    async create(input: DeviceCreateBody): Promise<{ device: Device; apiKey: string }> {
      const apiKey = generateApiKey()
      const row = {
        name: input.name,
        device_type: input.device_type ?? 'sensor',
        description: input.description ?? null,
        location: input.location ?? null,
        firmware_version: input.firmware_version ?? null,
        hardware_version: input.hardware_version ?? null,
        metadata: sql.json((input.metadata ?? {}) as Parameters<typeof sql.json>[0]),
        api_key_hash: apiKey.hash,
        api_key_prefix: apiKey.prefix,
      }
      try {
        const [created] = await sql<DeviceRow[]>`
          INSERT INTO devices ${sql(row)} RETURNING ${sql(DEVICE_COLUMNS)}`
        return { device: toDevice(created as DeviceRow), apiKey: apiKey.key }
      } catch (error) {
        if ((error as { code?: string }).code === '23505') throw new DuplicateDeviceNameError(input.name)
        throw error
      }
    },

    async findIdentityByKeyHash(hash: Buffer): Promise<DeviceIdentity | undefined> {
      const [row] = await sql<DeviceIdentity[]>`
        SELECT id, device_type, status, api_key_hash, rate_limit FROM devices WHERE api_key_hash = ${hash}`
      return row
    },

    async findIdentityById(id: number): Promise<DeviceIdentity | undefined> {
      const [row] = await sql<DeviceIdentity[]>`
        SELECT id, device_type, status, api_key_hash, rate_limit FROM devices WHERE id = ${id}`
      return row
    },

    async findById(id: number): Promise<Device | undefined> {
      const [row] = await sql<DeviceRow[]>`SELECT ${sql(DEVICE_COLUMNS)} FROM devices WHERE id = ${id}`
      return row ? toDevice(row) : undefined
    },

    async list(query: DeviceListQuery): Promise<{ devices: Device[]; total: number }> {
      const pattern = query.search ? `%${query.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null
      const where = sql`
        WHERE (${query.status ?? null}::text IS NULL OR status = ${query.status ?? null})
          AND (${query.device_type ?? null}::text IS NULL OR device_type = ${query.device_type ?? null})
          AND (${pattern}::text IS NULL
               OR name ILIKE ${pattern} OR description ILIKE ${pattern} OR location ILIKE ${pattern})`
      const [rows, [count]] = await Promise.all([
        sql<DeviceRow[]>`
          SELECT ${sql(DEVICE_COLUMNS)} FROM devices ${where}
          ORDER BY id LIMIT ${query.per_page} OFFSET ${(query.page - 1) * query.per_page}`,
        sql<{ total: number }[]>`SELECT count(*)::int AS total FROM devices ${where}`,
      ])
      return { devices: rows.map(toDevice), total: count?.total ?? 0 }
    },

    /** Applies the given fields; undefined when there is no such device. */
    async update(id: number, patch: DeviceUpdateBody): Promise<Device | undefined> {
      const changes: Record<string, unknown> = { ...patch, updated_at: new Date() }
      if (patch.metadata) changes.metadata = sql.json(patch.metadata as Parameters<typeof sql.json>[0])
      if (patch.rate_limit) changes.rate_limit = sql.json(patch.rate_limit)
      try {
        const [row] = await sql<DeviceRow[]>`
          UPDATE devices SET ${sql(changes)} WHERE id = ${id} RETURNING ${sql(DEVICE_COLUMNS)}`
        return row ? toDevice(row) : undefined
      } catch (error) {
        if ((error as { code?: string }).code === '23505')
          throw new DuplicateDeviceNameError(patch.name ?? '')
        throw error
      }
    },

    /** Deactivates the device and revokes its key: even if reactivated, the old key never works again. */
    async deactivate(id: number): Promise<Device | undefined> {
      const revoked = generateApiKey()
      const [row] = await sql<DeviceRow[]>`
        UPDATE devices SET status = 'inactive', api_key_hash = ${revoked.hash}, updated_at = now()
        WHERE id = ${id} RETURNING ${sql(DEVICE_COLUMNS)}`
      return row ? toDevice(row) : undefined
    },

    /** A new key for the device; the old one stops working at once. */
    async rotateKey(id: number): Promise<{ device: Device; apiKey: string } | undefined> {
      const apiKey = generateApiKey()
      const [row] = await sql<DeviceRow[]>`
        UPDATE devices SET api_key_hash = ${apiKey.hash}, api_key_prefix = ${apiKey.prefix}, updated_at = now()
        WHERE id = ${id} RETURNING ${sql(DEVICE_COLUMNS)}`
      return row ? { device: toDevice(row), apiKey: apiKey.key } : undefined
    },

    /** Moves `last_seen` forward for many devices in one statement (never backwards). */
    async touchLastSeen(seen: Map<number, number>): Promise<void> {
      if (seen.size === 0) return
      const ids = [...seen.keys()]
      const times = [...seen.values()].map((ms) => new Date(ms).toISOString())
      await sql`
        UPDATE devices d SET last_seen = GREATEST(d.last_seen, x.seen)
        FROM unnest(${ids}::int[], ${times}::timestamptz[]) AS x(id, seen)
        WHERE d.id = x.id`
    },
  }
}

export type DevicesRepository = ReturnType<typeof createDevicesRepository>
