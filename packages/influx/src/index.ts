export * from './line-protocol.js'
export * from './query-influxql.js'
export * from './target-from-config.js'
export * from './write-client.js'
