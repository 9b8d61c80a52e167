export * from './apps.js'
export * from './fragments.js'
export * from './influx-credentials.js'
export * from './parse-env.js'
