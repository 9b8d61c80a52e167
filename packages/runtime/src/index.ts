export * from './health-server.js'
export * from './logger.js'
export * from './periodic-job.js'
export * from './probe.js'
