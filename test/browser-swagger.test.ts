import { waitFor } from '@iotflow/testkit'
import { describe, expect, it } from 'vitest'
import { artifactPath, useBrowser } from './support/browser.js'
import { usePipelineFixture } from './support/fixture.js'
import { ADMIN_TOKEN } from './support/pipeline.js'

const fixture = usePipelineFixture()
const chromium = useBrowser()

describe('Swagger UI at /docs, in a real browser', () => {
  it('authorizes with a device key and sends a batch with "Try it out": 202, stored in both stores', async () => {
    const device = await fixture.pipeline.registerDevice()
    const page = await chromium.browser.newPage()
    page.setDefaultTimeout(30_000) // generous: CI machines are shared and busy
    try {
      await page.goto(`${fixture.pipeline.baseUrl}/docs`)
      await page.locator('.swagger-ui .opblock').first().waitFor()

      // Authorize: the device key into the X-API-Key scheme.
      await page.locator('.auth-wrapper .authorize').click()
      const scheme = page.locator('.modal-ux .auth-container').filter({ hasText: 'deviceApiKey' })
      await scheme.locator('input').fill(device.apiKey)
      await scheme.locator('button.authorize').click()
      await scheme.getByText('Authorized', { exact: true }).waitFor()
      await scheme.locator('button.btn-done').click()

      // Try it out with the documented batch example.
      const operation = page.locator('#operations-telemetry-post_api_v1_telemetry')
      await operation.locator('.opblock-summary').click()
      await operation.getByRole('button', { name: 'Try it out' }).click()
      const body = operation.locator('textarea.body-param__text')
      const example = JSON.parse(await body.inputValue()) as { points: unknown[] }
      expect(example.points).toHaveLength(2)
      await operation.getByRole('button', { name: 'Execute' }).click()

      const status = operation.locator('.live-responses-table .response .response-col_status').first()
      await status.waitFor()
      expect((await status.textContent())?.trim()).toBe('202')
      const answer = await operation.locator('.live-responses-table .microlight').first().textContent()
      expect(JSON.parse(answer ?? '')).toMatchObject({ accepted: 2, batch_id: expect.any(String) })
      // The request Swagger UI really sent carried the key in X-API-Key, to this gateway.
      const curl = await operation.locator('.curl-command').textContent()
      expect(curl).toContain(`${fixture.pipeline.baseUrl}/api/v1/telemetry`)
      expect(curl).toContain(`X-API-Key: ${device.apiKey}`)
      await page.screenshot({ path: artifactPath('swagger-try-it-out.png'), fullPage: true })
    } catch (error) {
      await page.screenshot({ path: artifactPath('swagger-try-it-out.failure.png'), fullPage: true })
      throw error
    } finally {
      await page.close()
    }

    await waitFor(
      async () => {
        const [pg, ifx] = await Promise.all([
          fixture.db.sql`SELECT data FROM telemetry WHERE device_id = ${device.id} ORDER BY time`,
          fixture.influx.rowsOf(device.id),
        ])
        return pg.length === 2 && ifx.length === 2
      },
      { timeoutMs: 15_000, what: 'the two example points in both stores' },
    )
  }, 60_000)

  it('authorizes with an operator token: a read token lists devices with "Try it out", and is refused a change', async () => {
    const created = await fetch(`${fixture.pipeline.baseUrl}/api/v1/operator-tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'swagger-reader', role: 'read' }),
    })
    const { secret } = (await created.json()) as { secret: string }
    const page = await chromium.browser.newPage()
    page.setDefaultTimeout(30_000)
    try {
      await page.goto(`${fixture.pipeline.baseUrl}/docs`)
      await page.locator('.swagger-ui .opblock').first().waitFor()
      await page.locator('.auth-wrapper .authorize').click()
      const scheme = page.locator('.modal-ux .auth-container').filter({ hasText: 'adminBearer' })
      await scheme.locator('input').fill(secret)
      await scheme.locator('button.authorize').click()
      await scheme.getByText('Authorized', { exact: true }).waitFor()
      await scheme.locator('button.btn-done').click()

      const execute = async (operationId: string) => {
        const operation = page.locator(`#${operationId}`)
        await operation.locator('.opblock-summary').click()
        await operation.getByRole('button', { name: 'Try it out' }).click()
        await operation.getByRole('button', { name: 'Execute' }).click()
        const status = operation.locator('.live-responses-table .response .response-col_status').first()
        await status.waitFor()
        return (await status.textContent())?.trim()
      }
      expect(await execute('operations-devices-get_api_v1_devices')).toBe('200')
      // A change with the read token: 403 (POST /api/v1/devices with its example body).
      expect(await execute('operations-devices-post_api_v1_devices')).toBe('403')
    } catch (error) {
      await page.screenshot({ path: artifactPath('swagger-operator-token.failure.png'), fullPage: true })
      throw error
    } finally {
      await page.close()
    }
  }, 60_000)
})
