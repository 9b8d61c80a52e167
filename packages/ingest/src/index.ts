export * from './bulk-ingest.js'
export * from './device-rate-limiter.js'
export * from './field-type-registry.js'
export * from './ingest-service.js'
