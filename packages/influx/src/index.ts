export * from './line-protocol.js'
export * from './query-v1.js'
export * from './write-client.js'
