export * from './compare-stores.js'
export * from './stored-points.js'
