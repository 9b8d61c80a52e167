import { randomBytes } from 'node:crypto'

/** A name no other test run uses: for databases, queue prefixes and InfluxDB databases. */
export const uniqueName = (prefix: string) =>
  `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`
