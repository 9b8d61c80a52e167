export * from './bulk-ingest.js'
export * from './field-type-registry.js'
export * from './ingest-service.js'
export * from './line-protocol-ingest.js'
