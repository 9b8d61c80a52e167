export * from './health-server.js'
export * from './logger.js'
export * from './probe.js'
export * from './retry.js'
