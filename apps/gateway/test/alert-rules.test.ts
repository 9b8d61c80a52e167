import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { admin, build, type TestGateway } from './helper.js'

let gateway: TestGateway
beforeAll(async () => {
  gateway = await build()
})
afterAll(async () => {
  await gateway?.close()
})

const request = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
  gateway.app.inject({ method, url, headers: admin, ...(payload && { payload }) })

const hot = { name: 'too hot', field: 'temperature', condition: '>', threshold: 30 }

describe('alert rules', () => {
  it('creates, reads, lists, changes and deletes a rule', async () => {
    const created = await request('POST', '/api/v1/alert-rules', {
      ...hot,
      clear_threshold: 28,
      for_seconds: 60,
      severity: 'critical',
      labels: { site: 'north' },
      device_type: 'climate',
    })
    expect(created.statusCode).toBe(201)
    const { rule } = created.json()
    expect(rule).toMatchObject({
      id: expect.any(Number),
      name: 'too hot',
      kind: 'threshold',
      field: 'temperature',
      condition: '>',
      threshold: 30,
      clear_threshold: 28,
      for_seconds: 60,
      no_data_seconds: null,
      severity: 'critical',
      labels: { site: 'north' },
      device_ids: null,
      device_type: 'climate',
    })

    expect((await request('GET', `/api/v1/alert-rules/${rule.id}`)).json()).toEqual({ rule })
    const list = (await request('GET', '/api/v1/alert-rules')).json()
    expect(list.rules.map((r: { id: number }) => r.id)).toContain(rule.id)

    // Moving the target from a type to a list of devices: the type is removed with null.
    const changed = await request('PATCH', `/api/v1/alert-rules/${rule.id}`, {
      device_type: null,
      device_ids: [1, 2],
      threshold: 35,
    })
    expect(changed.statusCode).toBe(200)
    expect(changed.json().rule).toMatchObject({ device_type: null, device_ids: [1, 2], threshold: 35 })

    expect((await request('DELETE', `/api/v1/alert-rules/${rule.id}`)).statusCode).toBe(204)
    expect((await request('GET', `/api/v1/alert-rules/${rule.id}`)).statusCode).toBe(404)
    expect((await request('DELETE', `/api/v1/alert-rules/${rule.id}`)).statusCode).toBe(404)
  })

  it('defaults: threshold kind, warning, for_seconds 0, every device', async () => {
    const created = await request('POST', '/api/v1/alert-rules', { ...hot, name: 'defaults' })
    expect(created.json().rule).toMatchObject({
      kind: 'threshold',
      severity: 'warning',
      for_seconds: 0,
      labels: {},
      device_ids: null,
      device_type: null,
    })
  })

  it.each([
    [{ name: 'a', condition: '>', threshold: 1 }, ['body.field']],
    [{ name: 'b', field: 'x', threshold: 1 }, ['body.condition']],
    [{ name: 'c', field: 'x', condition: '<' }, ['body.threshold']],
    [{ name: 'd', kind: 'no_data' }, ['body.no_data_seconds']],
    [{ ...hot, name: 'e', clear_threshold: 31 }, ['body.clear_threshold']],
    [{ ...hot, name: 'f', condition: '>=', clear_threshold: 30 }, ['body.clear_threshold']],
    [{ ...hot, name: 'g', condition: '<', clear_threshold: 29 }, ['body.clear_threshold']],
    [{ ...hot, name: 'h', condition: '==', clear_threshold: 1 }, ['body.clear_threshold']],
    [{ ...hot, name: 'i', device_ids: [1], device_type: 'climate' }, ['body.device_type']],
    [{ ...hot, name: 'j', no_data_seconds: 60 }, ['body.no_data_seconds']],
  ])('refuses %j with a 400 naming %j', async (body, paths) => {
    const response = await request('POST', '/api/v1/alert-rules', body)
    expect(response.statusCode).toBe(400)
    expect(response.json().errors.map((e: { path: string }) => e.path)).toEqual(paths)
  })

  it('refuses what the schema does not allow, naming it', async () => {
    const badCondition = await request('POST', '/api/v1/alert-rules', { ...hot, name: 'k', condition: '=>' })
    expect(badCondition.statusCode).toBe(400)
    expect(JSON.stringify(badCondition.json().errors)).toContain('body.condition')
    const unknown = await request('POST', '/api/v1/alert-rules', { ...hot, name: 'l', colour: 'red' })
    expect(unknown.json().errors).toEqual([{ path: 'body.colour', message: 'is not an allowed property' }])
  })

  it('checks a change against the whole rule: a clear threshold on the firing side is a 400', async () => {
    const { rule } = (await request('POST', '/api/v1/alert-rules', { ...hot, name: 'patched' })).json()
    const response = await request('PATCH', `/api/v1/alert-rules/${rule.id}`, { clear_threshold: 40 })
    expect(response.statusCode).toBe(400)
    expect(response.json().errors).toEqual([
      { path: 'body.clear_threshold', message: expect.stringContaining('non-firing side') },
    ])
    expect((await request('GET', `/api/v1/alert-rules/${rule.id}`)).json().rule.clear_threshold).toBeNull()
  })

  it('answers 409 for a duplicate name, 401 without the admin token', async () => {
    await request('POST', '/api/v1/alert-rules', { ...hot, name: 'twin' })
    expect((await request('POST', '/api/v1/alert-rules', { ...hot, name: 'twin' })).statusCode).toBe(409)
    const anonymous = await gateway.app.inject({ method: 'GET', url: '/api/v1/alert-rules' })
    expect(anonymous.statusCode).toBe(401)
    const alerts = await gateway.app.inject({ method: 'GET', url: '/api/v1/alerts' })
    expect(alerts.statusCode).toBe(401)
  })

  it('lists alerts and history (empty without an evaluator), refusing a bad filter', async () => {
    expect((await request('GET', '/api/v1/alerts?state=firing')).json()).toEqual({ alerts: [] })
    expect((await request('GET', '/api/v1/alerts/history?limit=5')).json()).toEqual({ transitions: [] })
    const bad = await request('GET', '/api/v1/alerts?state=burning')
    expect(bad.statusCode).toBe(400)
    expect(JSON.stringify(bad.json().errors)).toContain('querystring.state')
  })
})
