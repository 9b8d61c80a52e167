import { describe, expect, it } from 'vitest'
import { queueCatalog, storeJobOptionsWith } from './catalog.js'

describe('storeJobOptionsWith', () => {
  it("is the catalog's policy when nothing is overridden", () => {
    expect(storeJobOptionsWith('storePostgres')).toEqual(queueCatalog.storePostgres.options)
    expect(storeJobOptionsWith('storeInflux', { attempts: undefined, backoffMs: undefined })).toEqual(
      queueCatalog.storeInflux.options,
    )
  })

  it('overrides only the numbers: the backoff stays exponential with jitter, failures stay kept', () => {
    expect(storeJobOptionsWith('storePostgres', { attempts: 3, backoffMs: 100 })).toEqual({
      ...queueCatalog.storePostgres.options,
      attempts: 3,
      backoff: { type: 'exponential', delay: 100, jitter: 0.5 },
    })
  })
})
