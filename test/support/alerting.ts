import {
  createTestDatabase,
  serviceUrls,
  startPrivateAlertmanager,
  type TestDatabase,
} from '@iotflow/testkit'
import { afterAll, beforeAll, expect } from 'vitest'
import { startAlertReceiver } from './alert-receiver.js'
import { ADMIN_TOKEN, type Pipeline, startPipeline } from './pipeline.js'

export interface AlertingFixture {
  db: TestDatabase
  pipeline: Pipeline
  receiver: Awaited<ReturnType<typeof startAlertReceiver>>
  alertmanager: Awaited<ReturnType<typeof startPrivateAlertmanager>>
  /** Creates an alert rule through the gateway; resolves with its id. */
  createRule(rule: Record<string, unknown>): Promise<number>
}

/**
 * For an alert test file: a database, the gateway (no writer: alerts only), a real Alertmanager
 * of the file's own and the webhook receiver it notifies, started before the tests and torn down
 * after them. The test starts the evaluator itself. Read its fields inside tests.
 */
export function useAlertingFixture(): AlertingFixture {
  const fixture = {} as AlertingFixture
  beforeAll(async () => {
    fixture.db = await createTestDatabase()
    fixture.receiver = await startAlertReceiver()
    fixture.alertmanager = await startPrivateAlertmanager({ webhookUrl: fixture.receiver.url })
    fixture.pipeline = await startPipeline({
      databaseUrl: fixture.db.url,
      influx: { url: serviceUrls.influx, database: 'unused' },
    })
    fixture.createRule = async (rule) => {
      const response = await fetch(`${fixture.pipeline.baseUrl}/api/v1/alert-rules`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(rule),
      })
      expect(response.status).toBe(201)
      return ((await response.json()) as { rule: { id: number } }).rule.id
    }
  })
  afterAll(async () => {
    await fixture.pipeline?.close()
    await fixture.alertmanager?.dispose()
    await fixture.receiver?.close()
    await fixture.db?.drop()
  })
  return fixture
}
