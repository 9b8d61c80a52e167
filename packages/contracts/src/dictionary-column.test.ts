import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  type DictionaryColumn,
  dictionaryIndexAt,
  dictionaryOf,
  dictionaryValueAt,
  NO_VALUE,
} from './dictionary-column.js'

// A few objects, so that points share them (by reference), some equal in content but not the same.
const pool = [{ host: 'a' }, { host: 'b' }, { host: 'a' }, { host: 'c', n: 1 }]
const perPoint = fc.array(fc.option(fc.constantFrom(...pool), { nil: null }), { minLength: 1, maxLength: 40 })

describe('a dictionary column', () => {
  it("gives each point its own value back after the queue's JSON, each distinct object once", () => {
    fc.assert(
      fc.property(perPoint, (values) => {
        const column = dictionaryOf(values)
        const present = values.filter((value) => value !== null)
        if (present.length === 0) {
          expect(column).toBeUndefined()
          return
        }
        const built = column as DictionaryColumn<object>
        expect(built.values.length).toBe(new Set(present).size)
        const everyPointShares = present.length === values.length && new Set(present).size === 1
        expect(built.at === undefined).toBe(everyPointShares)
        const queued: DictionaryColumn<object> = JSON.parse(JSON.stringify(built))
        values.forEach((value, i) => {
          expect(dictionaryValueAt(queued, i)).toEqual(value ?? undefined)
          expect(dictionaryIndexAt(queued, i) === NO_VALUE).toBe(value === null)
        })
      }),
    )
  })

  it('tells strings apart by their text', () => {
    expect(dictionaryOf(['cpu', 'mem', null, 'cpu'])).toEqual({ values: ['cpu', 'mem'], at: [0, 1, -1, 0] })
    expect(dictionaryOf(['cpu', 'cpu'])).toEqual({ values: ['cpu'] })
    expect(dictionaryOf([null, null])).toBeUndefined()
  })

  it('has no value for a point none was given for, or beyond its values', () => {
    expect(dictionaryValueAt(undefined, 0)).toBeUndefined()
    expect(dictionaryIndexAt({ values: ['x'], at: [0, 3] }, 1)).toBe(NO_VALUE)
    expect(dictionaryValueAt({ values: ['x'] }, 7)).toBe('x')
  })
})
