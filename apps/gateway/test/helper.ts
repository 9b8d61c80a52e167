import { loadGatewayConfig } from '@iotflow/config'
import { createTestDatabase, serviceUrls, type TestDatabase, uniqueName } from '@iotflow/testkit'
import { buildApp, type GatewayApp } from '../src/app.js'

export const ADMIN_TOKEN = 'gateway-test-admin-token'
export const admin = { authorization: `Bearer ${ADMIN_TOKEN}` }

export interface TestGateway {
  app: GatewayApp
  db: TestDatabase
  queuePrefix: string
  close(): Promise<void>
}

/**
 * The gateway on a database and queue prefix of its own, driven through `app.inject`. Pass another
 * TestGateway as `peer` for a second instance on the same database and queues.
 */
export async function build(env: Record<string, string> = {}, peer?: TestGateway): Promise<TestGateway> {
  const db = peer?.db ?? (await createTestDatabase())
  const queuePrefix = peer?.queuePrefix ?? uniqueName('gw')
  const app = await buildApp(
    loadGatewayConfig({
      ADMIN_TOKEN,
      DATABASE_URL: db.url,
      REDIS_URL: serviceUrls.redis,
      QUEUE_PREFIX: queuePrefix,
      MIGRATE_ON_START: 'false',
      ...env,
    }),
    { logger: false },
  )
  return {
    app,
    db,
    queuePrefix,
    async close() {
      await app.close()
      if (!peer) await db.drop()
    },
  }
}

export async function registerDevice(app: GatewayApp, name = uniqueName('device')) {
  const response = await app.inject({
    method: 'POST',
    url: '/api/v1/devices',
    headers: admin,
    payload: { name },
  })
  return response.json() as { device: { id: number; name: string }; api_key: string }
}
