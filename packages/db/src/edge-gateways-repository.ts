import type { RateLimit } from '@iotflow/contracts'
import { GATEWAY_KEY_PREFIX, generateApiKey } from './api-keys.js'
import type { Sql } from './client.js'

export interface EdgeGateway {
  id: number
  name: string
  status: 'active' | 'inactive'
  device_ids: number[]
  api_key_prefix: string
  created_at: string
  updated_at: string
}

/** What the bulk ingest route needs: the gateway and the devices it may speak for. */
export interface EdgeGatewayIdentity {
  id: number
  status: 'active' | 'inactive'
  api_key_hash: Buffer
  devices: Map<number, { device_type: string; status: 'active' | 'inactive'; rate_limit: RateLimit | null }>
}

export class EdgeGatewayInputError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 409,
  ) {
    super(message)
    this.name = 'EdgeGatewayInputError'
  }
}

interface GatewayRow {
  id: number
  name: string
  status: 'active' | 'inactive'
  api_key_prefix: string
  created_at: Date
  updated_at: Date
  device_ids: number[]
}

const toGateway = (row: GatewayRow): EdgeGateway => ({
  ...row,
  device_ids: [...row.device_ids].sort((a, b) => a - b),
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString(),
})

export function createEdgeGatewaysRepository(sql: Sql) {
  const select = (where: ReturnType<Sql>) => sql<GatewayRow[]>`
    SELECT g.id, g.name, g.status, g.api_key_prefix, g.created_at, g.updated_at,
           coalesce(array_agg(d.device_id) FILTER (WHERE d.device_id IS NOT NULL), '{}') AS device_ids
    FROM edge_gateways g LEFT JOIN edge_gateway_devices d ON d.gateway_id = g.id
    ${where}
    GROUP BY g.id`

  async function setDevices(tx: Sql, gatewayId: number, deviceIds: number[]) {
    const known = await tx<{ id: number }[]>`SELECT id FROM devices WHERE id = ANY(${deviceIds}::int[])`
    const missing = deviceIds.filter((id) => !known.some((k) => k.id === id))
    if (missing.length > 0) throw new EdgeGatewayInputError(`no device ${missing.join(', ')}`, 400)
    await tx`DELETE FROM edge_gateway_devices WHERE gateway_id = ${gatewayId}`
    if (deviceIds.length === 0) return
    await tx`
      INSERT INTO edge_gateway_devices (gateway_id, device_id)
      SELECT ${gatewayId}, unnest(${deviceIds}::int[]) ON CONFLICT DO NOTHING`
  }

  const findById = async (id: number) => {
    const [row] = await select(sql`WHERE g.id = ${id}`)
    return row ? toGateway(row) : undefined
  }

  return {
    findById,

    /** A gateway credential for the given devices; the key is shown once. */
    async create(input: {
      name: string
      device_ids: number[]
    }): Promise<{ gateway: EdgeGateway; apiKey: string }> {
      const apiKey = generateApiKey(GATEWAY_KEY_PREFIX)
      const id = await sql
        .begin(async (tx) => {
          const [row] = await tx<{ id: number }[]>`
            INSERT INTO edge_gateways (name, api_key_hash, api_key_prefix)
            VALUES (${input.name}, ${apiKey.hash}, ${apiKey.prefix}) RETURNING id`
          const gatewayId = (row as { id: number }).id
          await setDevices(tx as unknown as Sql, gatewayId, input.device_ids)
          return gatewayId
        })
        .catch(asInputError(input.name))
      return { gateway: (await findById(id)) as EdgeGateway, apiKey: apiKey.key }
    },

    async update(
      id: number,
      patch: { name?: string; status?: 'active' | 'inactive'; device_ids?: number[] },
    ): Promise<EdgeGateway | undefined> {
      const found = await sql
        .begin(async (tx) => {
          const { device_ids, ...columns } = patch
          const [row] = await tx`
            UPDATE edge_gateways SET ${tx({ ...columns, updated_at: new Date() })} WHERE id = ${id} RETURNING id`
          if (!row) return false
          if (device_ids) await setDevices(tx as unknown as Sql, id, device_ids)
          return true
        })
        .catch(asInputError(patch.name ?? ''))
      return found ? findById(id) : undefined
    },

    /** Deactivates the gateway and revokes its key for good. */
    async deactivate(id: number): Promise<EdgeGateway | undefined> {
      const [row] = await sql`
        UPDATE edge_gateways SET status = 'inactive', api_key_hash = ${generateApiKey(GATEWAY_KEY_PREFIX).hash},
          updated_at = now()
        WHERE id = ${id} RETURNING id`
      return row ? findById(id) : undefined
    },

    async findIdentityByKeyHash(hash: Buffer): Promise<EdgeGatewayIdentity | undefined> {
      const rows = await sql<
        {
          id: number
          status: 'active' | 'inactive'
          api_key_hash: Buffer
          device_id: number | null
          device_type: string
          device_status: 'active' | 'inactive'
          rate_limit: RateLimit | null
        }[]
      >`
        SELECT g.id, g.status, g.api_key_hash, d.id AS device_id, d.device_type, d.status AS device_status,
          d.rate_limit
        FROM edge_gateways g
        LEFT JOIN edge_gateway_devices gd ON gd.gateway_id = g.id
        LEFT JOIN devices d ON d.id = gd.device_id
        WHERE g.api_key_hash = ${hash}`
      const first = rows[0]
      if (!first) return undefined
      const devices: EdgeGatewayIdentity['devices'] = new Map()
      for (const row of rows) {
        if (row.device_id !== null)
          devices.set(row.device_id, {
            device_type: row.device_type,
            status: row.device_status,
            rate_limit: row.rate_limit,
          })
      }
      return { id: first.id, status: first.status, api_key_hash: first.api_key_hash, devices }
    },
  }
}

function asInputError(name: string) {
  return (error: unknown): never => {
    if ((error as { code?: string }).code === '23505') {
      throw new EdgeGatewayInputError(`an edge gateway named "${name}" already exists`, 409)
    }
    throw error
  }
}

export type EdgeGatewaysRepository = ReturnType<typeof createEdgeGatewaysRepository>
