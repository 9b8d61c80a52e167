export * from './exposition.js'
export * from './ingest.js'
export * from './registry.js'
export * from './store-writes.js'
