import { waitFor } from '@iotflow/testkit'
import { describe, expect, it } from 'vitest'
import { artifactPath, useBrowser } from './support/browser.js'
import { usePipelineFixture } from './support/fixture.js'
import { ADMIN_TOKEN } from './support/pipeline.js'

const fixture = usePipelineFixture()
const chromium = useBrowser()

describe('the queue dashboard at /admin/queues, in a real browser', () => {
  it('refuses a browser without credentials, or with a wrong password', async () => {
    for (const httpCredentials of [undefined, { username: 'operator', password: 'not-the-admin-token' }]) {
      const context = await chromium.browser.newContext(httpCredentials ? { httpCredentials } : {})
      try {
        const page = await context.newPage()
        const challenges: { status: number; authenticate?: string }[] = []
        page.on('response', (response) =>
          challenges.push({
            status: response.status(),
            authenticate: response.headers()['www-authenticate'],
          }),
        )
        // Headless Chromium cannot show a login prompt: without credentials the navigation fails
        // on the challenge; with wrong ones it ends on the 401 page. Either way, no dashboard.
        const navigation = await page
          .goto(`${fixture.pipeline.baseUrl}/admin/queues`)
          .catch((error: Error) => error)
        if (navigation instanceof Error) {
          expect(navigation.message).toMatch(/ERR_INVALID_AUTH_CREDENTIALS/)
        } else {
          expect(navigation?.status()).toBe(401)
          expect(await page.textContent('body')).toContain('operator credentials are required')
        }
        expect(challenges.length).toBeGreaterThan(0)
        for (const challenge of challenges) {
          expect(challenge).toEqual({
            status: 401,
            authenticate: expect.stringMatching(/^Basic realm="IoTFlow admin"/),
          })
        }
        const api = await context.request.get(`${fixture.pipeline.baseUrl}/admin/queues/api/queues`)
        expect(api.status()).toBe(401)
        expect(await api.text()).not.toContain('store-postgres')
      } finally {
        await context.close()
      }
    }
  })

  it('shows the writer queues and a failed job, which an operator retries from the page once fixed', async () => {
    const device = await fixture.pipeline.registerDevice()
    // Postgres refuses this device's rows for good (a check violation): the store job fails at
    // once into the failed set, the dead-letter queue.
    await fixture.db.sql.unsafe(
      `ALTER TABLE telemetry ADD CONSTRAINT refuse_device CHECK (device_id <> ${device.id})`,
    )
    const points = [{ timestamp: '2026-11-27T07:00:00Z', data: { temperature: 12.5 } }]
    expect((await fixture.pipeline.send(device.apiKey, { points })).status).toBe(202)
    await waitFor(async () => (await fixture.pipeline.queueCounts())['store-postgres']?.failed === 1, {
      timeoutMs: 15_000,
      what: 'the refused job in the failed set',
    })

    const context = await chromium.browser.newContext({
      httpCredentials: { username: 'operator', password: ADMIN_TOKEN },
    })
    const page = await context.newPage()
    page.setDefaultTimeout(10_000)
    try {
      await page.goto(`${fixture.pipeline.baseUrl}/admin/queues`)
      for (const queue of ['store-postgres', 'store-influx', 'ingest-batches']) {
        await page.getByText(queue, { exact: true }).first().waitFor()
      }

      await page.goto(`${fixture.pipeline.baseUrl}/admin/queues/queue/store-postgres?status=failed`)
      const job = page
        .locator('[class*="JobCard"], [class*="card"]')
        .filter({ hasText: 'refuse_device' })
        .first()
      await job.waitFor()
      await page.screenshot({ path: artifactPath('queue-dashboard-failed-job.png'), fullPage: true })

      // The operator fixes the cause, then retries the job from the page.
      await fixture.db.sql.unsafe('ALTER TABLE telemetry DROP CONSTRAINT refuse_device')
      // The job's retry action is an icon button; its tooltip names it.
      const retry = job.locator('button:has(svg.lucide-refresh-cw)')
      await retry.hover()
      await page.getByText('Retry', { exact: true }).waitFor()
      await retry.click()
      const confirm = page.getByRole('button', { name: 'Confirm', exact: true })
      if (await confirm.isVisible().catch(() => false)) await confirm.click()

      await waitFor(
        async () => {
          const rows = await fixture.db.sql`SELECT data FROM telemetry WHERE device_id = ${device.id}`
          return rows.length === 1
        },
        { timeoutMs: 15_000, what: 'the retried point in Postgres' },
      )
      expect((await fixture.pipeline.queueCounts())['store-postgres']?.failed).toBe(0)
      await page.reload()
      await page.getByText('store-postgres', { exact: true }).first().waitFor()
      await page.screenshot({ path: artifactPath('queue-dashboard-after-retry.png'), fullPage: true })
    } catch (error) {
      await page.screenshot({ path: artifactPath('queue-dashboard.failure.png'), fullPage: true })
      throw error
    } finally {
      await context.close()
    }
  }, 60_000)
})
