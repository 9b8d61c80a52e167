import type { Sql } from './client.js'

export type FieldType = 'number' | 'boolean' | 'string'

export function createFieldTypesRepository(sql: Sql) {
  return {
    /** The registered type of each of `names` that has one. */
    async find(names: string[]): Promise<Map<string, FieldType>> {
      if (names.length === 0) return new Map()
      const rows = await sql<{ name: string; type: FieldType }[]>`
        SELECT name, type FROM field_types WHERE name = ANY(${names}::text[])`
      return new Map(rows.map((r) => [r.name, r.type]))
    },

    /**
     * Registers each field with the type given unless it already has one; returns the type every
     * field has now. Concurrent claims of one name by two instances: the first commit wins.
     */
    async claim(fields: Map<string, FieldType>): Promise<Map<string, FieldType>> {
      if (fields.size === 0) return new Map()
      const names = [...fields.keys()]
      await sql`
        INSERT INTO field_types (name, type)
        SELECT * FROM unnest(${names}::text[], ${[...fields.values()]}::text[])
        ON CONFLICT (name) DO NOTHING`
      return this.find(names)
    },
  }
}

export type FieldTypesRepository = ReturnType<typeof createFieldTypesRepository>
