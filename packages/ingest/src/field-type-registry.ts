import { type ErrorDetail, keyPath, type StoredPoint } from '@iotflow/contracts'

export type FieldType = 'number' | 'boolean' | 'string'

/** Where field types are kept for good (PostgreSQL's field_types table in production). */
export interface FieldTypeStore {
  find(names: string[]): Promise<Map<string, FieldType>>
  claim(fields: Map<string, FieldType>): Promise<Map<string, FieldType>>
}

const typeOf = (value: unknown) => typeof value as FieldType
const article = (type: FieldType) =>
  type === 'number' ? 'a number' : type === 'boolean' ? 'a boolean' : 'a string'

/**
 * The first type a field is stored with fixes it, as InfluxDB does. Checked before anything is
 * queued, so a type change is a 400 naming the field instead of a write that fails later. Types
 * never change once registered, so this process caches them without invalidation.
 */
export class FieldTypeRegistry {
  private readonly cache = new Map<string, FieldType>()

  constructor(
    private readonly store: FieldTypeStore,
    private readonly maxCached = 100_000,
  ) {}

  /**
   * Returns the problems of the request (empty when every field agrees with the registry and with
   * the rest of the request). New fields are registered only when there is no problem.
   */
  async check(points: StoredPoint[], pointPath: (index: number) => string): Promise<ErrorDetail[]> {
    const sent = new Map<string, FieldType>()
    // Usually every point agrees with the first and with the registry: then one pass is enough.
    let disagreement = false
    for (const point of points) {
      for (const name in point.data) {
        const type = typeOf(point.data[name])
        const first = sent.get(name)
        if (first === undefined) sent.set(name, type)
        else if (first !== type) disagreement = true
      }
    }
    const known = await this.lookup([...sent.keys()])
    const expected = new Map([...sent].map(([name, type]) => [name, known.get(name) ?? type]))
    for (const [name, type] of sent) if (expected.get(name) !== type) disagreement = true
    if (disagreement) {
      const errors = this.conflicts(points, expected, known, pointPath)
      if (errors.length > 0) return errors
    }

    const unknown = new Map([...sent].filter(([name]) => !known.has(name)))
    if (unknown.size === 0) return []
    const claimed = await this.store.claim(unknown)
    this.remember(claimed)
    // Another instance registered one of them first, with another type.
    return this.conflicts(points, new Map([...expected, ...claimed]), claimed, pointPath)
  }

  private conflicts(
    points: StoredPoint[],
    expected: Map<string, FieldType>,
    registered: Map<string, FieldType>,
    pointPath: (index: number) => string,
  ): ErrorDetail[] {
    const errors: ErrorDetail[] = []
    points.forEach((point, index) => {
      for (const [name, value] of Object.entries(point.data)) {
        const want = expected.get(name) as FieldType
        const got = typeOf(value)
        if (got === want) continue
        const holds = registered.has(name) ? 'is stored as' : 'is sent earlier in this request as'
        errors.push({
          path: keyPath(keyPath(pointPath(index), 'data'), name),
          message: `field "${name}" ${holds} ${article(want)}; got ${article(got)}`,
        })
      }
    })
    return errors
  }

  private async lookup(names: string[]): Promise<Map<string, FieldType>> {
    const found = new Map<string, FieldType>()
    const missing: string[] = []
    for (const name of names) {
      const type = this.cache.get(name)
      if (type) found.set(name, type)
      else missing.push(name)
    }
    if (missing.length > 0) {
      const stored = await this.store.find(missing)
      this.remember(stored)
      for (const [name, type] of stored) found.set(name, type)
    }
    return found
  }

  private remember(types: Map<string, FieldType>) {
    for (const [name, type] of types) {
      if (this.cache.size >= this.maxCached) {
        const oldest = this.cache.keys().next().value
        if (oldest !== undefined) this.cache.delete(oldest)
      }
      this.cache.set(name, type)
    }
  }
}
