import { type TSchema, Type } from '@sinclair/typebox'

/** The index in `at` of a point that has no value. */
export const NO_VALUE = -1

/**
 * A per-point value that many points share, as a dictionary: each distinct value once in `values`,
 * and `at[i]` the index in `values` of point `i`'s value (`NO_VALUE` when it has none). Without
 * `at`, every point has `values[0]`. A line protocol request of one series is then its measurement
 * and tags once instead of once per point (docs/pipeline.md, "Job payloads").
 */
export interface DictionaryColumn<T> {
  values: T[]
  at?: number[]
}

/** The schema of a dictionary column of `value`s. */
export const DictionaryColumnOf = <T extends TSchema>(value: T) =>
  Type.Object({
    values: Type.Array(value, { minItems: 1 }),
    at: Type.Optional(Type.Array(Type.Integer({ minimum: NO_VALUE }))),
  })

/** The index in `column.values` of point `i`'s value; `NO_VALUE` when it has none. */
export function dictionaryIndexAt(column: DictionaryColumn<unknown> | undefined, i: number): number {
  if (column === undefined) return NO_VALUE
  const { at } = column
  if (at === undefined) return 0
  const index = at[i]
  return index === undefined || index >= column.values.length ? NO_VALUE : index
}

/** Point `i`'s value; undefined when it has none. */
export function dictionaryValueAt<T>(column: DictionaryColumn<T> | undefined, i: number): T | undefined {
  const index = dictionaryIndexAt(column, i)
  return index === NO_VALUE ? undefined : (column as DictionaryColumn<T>).values[index]
}

/**
 * Builds a dictionary column point by point, in the order of the points. Values are told apart as a
 * Map does: strings by their text, objects by reference (never by their content, which would cost
 * a serialization per point); a run of one value costs a comparison per point.
 */
export class DictionaryColumnBuilder<T> {
  private readonly values: T[] = []
  private readonly indexOf = new Map<T, number>()
  private at: number[] | undefined
  /** While `at` is not needed: points 0 up to this one all have `values[0]`. */
  private shared = 0
  private last: T | undefined
  private lastIndex = NO_VALUE

  constructor(private readonly count: number) {}

  /** Point `i` has `value` (each point at most once, in increasing `i`). */
  set(i: number, value: T): void {
    let index: number
    if (value === this.last && this.lastIndex !== NO_VALUE) index = this.lastIndex
    else {
      const known = this.indexOf.get(value)
      if (known === undefined) {
        index = this.values.length
        this.values.push(value)
        this.indexOf.set(value, index)
      } else index = known
      this.last = value
      this.lastIndex = index
    }
    if (this.at === undefined) {
      if (index === 0 && i === this.shared) {
        this.shared++
        return
      }
      this.at = this.sharedPrefix()
    }
    this.at[i] = index
  }

  /** The column; undefined when no point has a value. */
  build(): DictionaryColumn<T> | undefined {
    if (this.values.length === 0) return undefined
    if (this.at === undefined && this.shared === this.count) return { values: this.values }
    return { values: this.values, at: this.at ?? this.sharedPrefix() }
  }

  /** `at` for the points so far: `values[0]` up to `shared`, none after. */
  private sharedPrefix(): number[] {
    const at = new Array<number>(this.count).fill(NO_VALUE)
    for (let j = 0; j < this.shared; j++) at[j] = 0
    return at
  }
}

/** A column of one entry per point (`null`: none) as a dictionary column; undefined when all are null. */
export function dictionaryOf<T>(perPoint: readonly (T | null)[]): DictionaryColumn<T> | undefined {
  const builder = new DictionaryColumnBuilder<T>(perPoint.length)
  for (let i = 0; i < perPoint.length; i++) {
    const value = perPoint[i]
    if (value !== null && value !== undefined) builder.set(i, value)
  }
  return builder.build()
}
