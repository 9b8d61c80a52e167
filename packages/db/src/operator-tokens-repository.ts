import { generateApiKey, hashApiKey } from './api-keys.js'
import type { Sql } from './client.js'

/** Operator token secrets start `iotop_`: a leaked one says what it is. */
export const OPERATOR_TOKEN_PREFIX = 'iotop_'

export type OperatorRole = 'read' | 'admin'

export interface OperatorToken {
  id: number
  name: string
  role: OperatorRole
  secret_prefix: string
  created_at: string
}

export class OperatorTokenNameTakenError extends Error {
  constructor(name: string) {
    super(`an operator token named ${JSON.stringify(name)} is in use`)
    this.name = 'OperatorTokenNameTakenError'
  }
}

interface TokenRow {
  id: string
  name: string
  role: OperatorRole
  secret_prefix: string
  created_at: Date
}

const toToken = (row: TokenRow): OperatorToken => ({
  id: Number(row.id),
  name: row.name,
  role: row.role,
  secret_prefix: row.secret_prefix,
  created_at: row.created_at.toISOString(),
})

/** Operator tokens: created with a secret shown once, found by the secret's hash, revoked for good. */
export function createOperatorTokensRepository(sql: Sql) {
  return {
    async create(input: {
      name: string
      role: OperatorRole
    }): Promise<{ token: OperatorToken; secret: string }> {
      const { key: secret, hash, prefix } = generateApiKey(OPERATOR_TOKEN_PREFIX)
      try {
        const [row] = await sql<TokenRow[]>`
          INSERT INTO operator_tokens (name, role, secret_hash, secret_prefix)
          VALUES (${input.name}, ${input.role}, ${hash}, ${prefix})
          RETURNING id, name, role, secret_prefix, created_at`
        if (!row) throw new Error('INSERT returned no row')
        return { token: toToken(row), secret }
      } catch (error) {
        if ((error as { code?: string }).code === '23505') throw new OperatorTokenNameTakenError(input.name)
        throw error
      }
    },

    async list(): Promise<OperatorToken[]> {
      const rows = await sql<TokenRow[]>`
        SELECT id, name, role, secret_prefix, created_at FROM operator_tokens
        WHERE revoked_at IS NULL ORDER BY id`
      return rows.map(toToken)
    },

    /** True when a token in use was revoked now. */
    async revoke(id: number): Promise<boolean> {
      const rows = await sql`
        UPDATE operator_tokens SET revoked_at = now() WHERE id = ${id} AND revoked_at IS NULL RETURNING id`
      return rows.length === 1
    },

    /** The token in use whose secret this is. The lookup is by hash, so no secret is compared. */
    async bySecret(secret: string): Promise<OperatorToken | undefined> {
      const [row] = await sql<TokenRow[]>`
        SELECT id, name, role, secret_prefix, created_at FROM operator_tokens
        WHERE secret_hash = ${hashApiKey(secret)} AND revoked_at IS NULL`
      return row && toToken(row)
    },
  }
}

export type OperatorTokensRepository = ReturnType<typeof createOperatorTokensRepository>
