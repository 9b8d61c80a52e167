import { loadGatewayConfig } from '@iotflow/config'
import { createTestDatabase, serviceUrls, type TestDatabase, uniqueName } from '@iotflow/testkit'
import { buildApp, type GatewayApp } from '../src/app.js'

export const ADMIN_TOKEN = 'gateway-test-admin-token'
export const admin = { authorization: `Bearer ${ADMIN_TOKEN}` }

export interface TestGateway {
  app: GatewayApp
  db: TestDatabase
  close(): Promise<void>
}

/** The gateway on a database and queue prefix of its own, driven through `app.inject`. */
export async function build(env: Record<string, string> = {}): Promise<TestGateway> {
  const db = await createTestDatabase()
  const app = await buildApp(
    loadGatewayConfig({
      ADMIN_TOKEN,
      DATABASE_URL: db.url,
      REDIS_URL: serviceUrls.redis,
      QUEUE_PREFIX: uniqueName('gw'),
      MIGRATE_ON_START: 'false',
      ...env,
    }),
    { logger: false },
  )
  return {
    app,
    db,
    async close() {
      await app.close()
      await db.drop()
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
