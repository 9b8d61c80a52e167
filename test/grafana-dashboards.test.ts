import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { queryV1, seriesRows } from '@iotflow/influx'
import {
  createTestDatabase,
  createTestInfluxDatabase,
  ScrapedMetrics,
  startPrivatePrometheus,
  waitFor,
} from '@iotflow/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { startWritersWithEndpoints } from './support/metrics-endpoints.js'
import { type Pipeline, startPipeline } from './support/pipeline.js'

const GRAFANA_DIR = join(import.meta.dirname, '..', 'infra', 'grafana')

interface Target {
  datasource: { uid: string }
  expr?: string
  query?: string
  rawSql?: string
}
interface Dashboard {
  title: string
  panels: { title: string; datasource: { uid: string }; targets: Target[] }[]
  templating: { list: { name: string; datasource: { uid: string }; query: string }[] }
}

const dashboards = readdirSync(join(GRAFANA_DIR, 'dashboards'))
  .filter((file) => file.endsWith('.json'))
  .map((file) => JSON.parse(readFileSync(join(GRAFANA_DIR, 'dashboards', file), 'utf8')) as Dashboard)

/** Every query of every dashboard (panel targets and template variables), with its data source. */
const queries = dashboards.flatMap((dashboard) => [
  ...dashboard.panels.flatMap((panel) =>
    panel.targets.map((target) => ({
      where: `${dashboard.title} / ${panel.title}`,
      uid: target.datasource.uid,
      text: target.expr ?? target.query ?? target.rawSql ?? '',
    })),
  ),
  ...dashboard.templating.list.map((variable) => ({
    where: `${dashboard.title} / $${variable.name}`,
    uid: variable.datasource.uid,
    text: variable.query,
  })),
])
const queriesOf = (uid: string) => queries.filter((q) => q.uid === uid)

const PROMQL_WORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
])

/** Metric names in a PromQL expression: identifiers that are not functions, keywords or labels. */
function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // label values
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // range selectors
    .replace(/\b(?:by|without|on|ignoring)\s*\([^)]*\)/g, '') // grouping label lists
  return [...stripped.matchAll(/\b[a-zA-Z_:][a-zA-Z0-9_:]*\b(?!\s*\()/g)]
    .map((match) => match[0])
    .filter((word) => !PROMQL_WORDS.has(word) && !/^\d/.test(word))
}

let db: Awaited<ReturnType<typeof createTestDatabase>>
let influx: Awaited<ReturnType<typeof createTestInfluxDatabase>>
let pipeline: Pipeline
let endpoints: Awaited<ReturnType<typeof startWritersWithEndpoints>>
let deviceId: number
const NOW = Date.now()

beforeAll(async () => {
  db = await createTestDatabase()
  influx = await createTestInfluxDatabase()
  pipeline = await startPipeline({ databaseUrl: db.url, influx })
  endpoints = await startWritersWithEndpoints(pipeline, { alertEvaluator: true })
  const device = await pipeline.registerDevice()
  deviceId = device.id
  const points = Array.from({ length: 30 }, (_, i) => ({
    timestamp: NOW - 60_000 * i,
    data: { temperature: 20 + i / 10, humidity: 50 },
    ...(i % 2 ? { type: 'sensors' } : {}),
  }))
  expect((await pipeline.send(device.apiKey, { points })).status).toBe(202)
  expect((await pipeline.send(device.apiKey, { points: [{ data: {} }] })).status).toBe(400)
  await waitFor(
    async () => {
      const rows = await db.sql`SELECT count(*)::int AS n FROM telemetry WHERE device_id = ${deviceId}`
      return rows[0]?.n === 30 && (await influx.rowsOf(deviceId)).length === 30
    },
    { timeoutMs: 15_000, what: 'the points in both stores' },
  )
})
afterAll(async () => {
  await endpoints?.close()
  await pipeline?.close()
  await influx?.drop()
  await db?.drop()
})

describe('the Grafana dashboards', () => {
  it('exist: "Pipeline" and "Device telemetry", on provisioned data sources', () => {
    expect(dashboards.map((d) => d.title).sort()).toEqual(['Device telemetry', 'Pipeline'])
    const provisioned = parseYaml(
      readFileSync(join(GRAFANA_DIR, 'provisioning', 'datasources', 'datasources.yml'), 'utf8'),
    ) as {
      datasources: {
        uid: string
        type: string
        url: string
        jsonData?: { version?: string; defaultBucket?: string }
      }[]
    }
    const uids = new Set(provisioned.datasources.map((d) => d.uid))
    for (const query of queries) expect(uids, query.where).toContain(query.uid)
    expect(provisioned.datasources.map((d) => d.type).sort()).toEqual([
      'grafana-postgresql-datasource',
      'influxdb',
      'prometheus',
    ])
    const influxSource = provisioned.datasources.find((d) => d.uid === 'influxdb')
    expect(influxSource?.jsonData).toMatchObject({ version: 'Flux', defaultBucket: 'telemetry' })
  })

  it('query in PromQL only metrics that the gateway, the writers and the alert evaluator really expose, in valid expressions', async () => {
    const { gateway, postgres, influx, alertEvaluator } = endpoints.urls
    const scrapes = await Promise.all(
      [gateway, postgres, influx, alertEvaluator].map((url) => ScrapedMetrics.from(`${url}/metrics`)),
    )
    // Every family an app declares (a counter that never moved has no sample yet, but is exposed).
    const exposed = new Set(scrapes.flatMap((scrape) => [...scrape.families.keys()]))
    const isExposed = (name: string) =>
      exposed.has(name) || exposed.has(name.replace(/_(?:bucket|sum|count)$/, ''))
    const promQueries = queriesOf('prometheus')
    expect(promQueries.length).toBeGreaterThanOrEqual(10)
    for (const query of promQueries) {
      const names = metricNamesIn(query.text)
      expect(names.length, query.where).toBeGreaterThan(0)
      for (const name of names) expect(isExposed(name), `${query.where}: ${name}`).toBe(true)
    }

    // Prometheus itself parses and runs every expression against the apps it scrapes.
    const prometheus = await startPrivatePrometheus(endpoints.scrapeTargets())
    try {
      await waitFor(async () => (await prometheus.query('up')).filter((s) => s.value === 1).length === 4, {
        timeoutMs: 20_000,
        what: 'four targets scraped',
      })
      for (const query of promQueries) {
        const series = await prometheus.query(query.text.replaceAll('$__rate_interval', '1m'))
        expect(Array.isArray(series), query.where).toBe(true)
      }
      const accepted = await prometheus.query('sum(iotflow_points_accepted_total)')
      expect(accepted[0]?.value).toBe(30)
    } finally {
      await prometheus.dispose()
    }
  })

  it('have an alerts panel: the firing alerts by rule and severity, and the evaluation lag’s quantiles', () => {
    const pipelineDashboard = dashboards.find((d) => d.title === 'Pipeline')
    const exprs = (title: RegExp) =>
      pipelineDashboard?.panels.find((p) => title.test(p.title))?.targets.map((t) => t.expr)
    expect(exprs(/^Alerts firing/)).toEqual([
      expect.stringMatching(/by \(rule, severity\) \(iotflow_alerts_firing\)/),
    ])
    expect(exprs(/^Alert evaluation lag/)).toEqual([
      expect.stringContaining(
        'histogram_quantile(0.5, sum by (le) (rate(iotflow_alert_evaluation_lag_seconds_bucket',
      ),
      expect.stringContaining(
        'histogram_quantile(0.99, sum by (le) (rate(iotflow_alert_evaluation_lag_seconds_bucket',
      ),
    ])
    // Panels do not overlap on the grid.
    const cells = new Set<string>()
    for (const panel of pipelineDashboard?.panels ?? []) {
      const { x, y, w, h } = (panel as unknown as { gridPos: { x: number; y: number; w: number; h: number } })
        .gridPos
      for (let i = x; i < x + w; i++)
        for (let j = y; j < y + h; j++) {
          expect(cells.has(`${i},${j}`), `${panel.title} overlaps at ${i},${j}`).toBe(false)
          cells.add(`${i},${j}`)
        }
    }
  })

  it('query in Flux the bucket and measurement the InfluxDB writer writes, by tags it writes', async () => {
    const fluxQueries = queriesOf('influxdb')
    expect(fluxQueries.length).toBeGreaterThanOrEqual(2)
    const measurements = seriesRows(await queryV1(influx.url, influx.database, 'SHOW MEASUREMENTS')).map(
      (r) => r.name,
    )
    const tagKeys = seriesRows(
      await queryV1(influx.url, influx.database, 'SHOW TAG KEYS FROM telemetry'),
    ).map((r) => r.tagKey)
    for (const query of fluxQueries) {
      expect(query.text, query.where).toMatch(/bucket: "telemetry"/)
      const named = [...query.text.matchAll(/r\._measurement == "([^"]+)"/g)].map((m) => m[1])
      expect(named.length, query.where).toBeGreaterThan(0)
      for (const measurement of named) expect(measurements, query.where).toContain(measurement)
      const tags = [...query.text.matchAll(/r\.([a-z_]+) ==/g)]
        .map((m) => m[1])
        .filter((t) => !t?.startsWith('_'))
      for (const tag of tags) expect(tagKeys, `${query.where}: tag ${tag}`).toContain(tag)
    }
  })

  it('query in SQL real tables and columns: each query runs on the migrated schema and finds the data', async () => {
    const from = new Date(NOW - 3_600_000).toISOString()
    const to = new Date(NOW + 60_000).toISOString()
    const asPostgres = (sql: string) =>
      sql
        .replace(/\$__timeGroupAlias\((\w+), '1m'\)/g, "date_trunc('minute', $1) AS time")
        .replace(/\$__timeFilter\((\w+)\)/g, `$1 BETWEEN '${from}' AND '${to}'`)
        .replace(/\$device\b/g, String(deviceId))
    const tables = new Set(
      (
        await db.sql<{ table_name: string }[]>`
          SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`
      ).map((r) => r.table_name),
    )
    const sqlQueries = queriesOf('postgres')
    expect(sqlQueries.length).toBeGreaterThanOrEqual(3)
    for (const query of sqlQueries) {
      const named = [...query.text.matchAll(/\b(?:FROM|JOIN)\s+([a-z_]+)/gi)].map((m) => m[1] as string)
      expect(named.length, query.where).toBeGreaterThan(0)
      for (const table of named) expect(tables, query.where).toContain(table)
      const rows = await db.sql.unsafe(asPostgres(query.text))
      expect(rows.length, query.where).toBeGreaterThan(0)
    }
  })

  it('are served by the compose stack: Prometheus scrapes every app where compose runs it', () => {
    const prometheusConfig = parseYaml(
      readFileSync(join(GRAFANA_DIR, '..', 'prometheus', 'prometheus.yml'), 'utf8'),
    ) as {
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[]
    }
    const compose = parseYaml(readFileSync(join(GRAFANA_DIR, '..', '..', 'docker-compose.yml'), 'utf8')) as {
      services: Record<string, { environment?: Record<string, string>; volumes?: string[] }>
    }
    const targets = Object.fromEntries(
      prometheusConfig.scrape_configs.map((c) => [c.job_name, c.static_configs.flatMap((s) => s.targets)]),
    )
    expect(targets).toEqual({
      gateway: [`gateway:${compose.services.gateway?.environment?.PORT}`],
      'writer-postgres': [`writer-postgres:${compose.services['writer-postgres']?.environment?.HEALTH_PORT}`],
      'writer-influx': [`writer-influx:${compose.services['writer-influx']?.environment?.HEALTH_PORT}`],
      'mqtt-bridge': [`mqtt-bridge:${compose.services['mqtt-bridge']?.environment?.HEALTH_PORT}`],
      'alert-evaluator': [`alert-evaluator:${compose.services['alert-evaluator']?.environment?.HEALTH_PORT}`],
    })
    for (const app of ['writer-postgres', 'writer-influx', 'mqtt-bridge', 'alert-evaluator']) {
      expect(compose.services[app]?.environment?.HEALTH_HOST).toBe('0.0.0.0')
    }
    expect(compose.services.prometheus?.volumes).toContain(
      './infra/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro',
    )
    expect(compose.services.grafana?.volumes).toEqual(
      expect.arrayContaining([
        './infra/grafana/provisioning:/etc/grafana/provisioning:ro',
        './infra/grafana/dashboards:/var/lib/grafana/dashboards:ro',
      ]),
    )
  })
})
