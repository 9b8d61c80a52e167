import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startPrivateServer } from './private-server.js'

export interface ScrapeTarget {
  job: string
  /** host:port on 127.0.0.1; Prometheus reads http://<address>/metrics. */
  address: string
}

interface TargetState {
  labels: { job: string }
  health: 'up' | 'down' | 'unknown'
  lastError: string
}

/** A private Prometheus (Debian's) scraping the given targets every second. */
export async function startPrivatePrometheus(targets: ScrapeTarget[]) {
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    'scrape_configs:',
    ...targets.flatMap((target) => [
      `  - job_name: ${JSON.stringify(target.job)}`,
      '    static_configs:',
      `      - targets: [${JSON.stringify(target.address)}]`,
    ]),
  ].join('\n')
  const server = await startPrivateServer({
    name: 'prometheus',
    command: 'prometheus',
    args: (dir, port) => {
      // Written into the server's own directory, so dispose() removes it with the data.
      const configFile = join(dir, 'prometheus.yml')
      writeFileSync(configFile, config)
      return [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=error',
      ]
    },
    answers: async (port) => (await fetch(`http://127.0.0.1:${port}/-/ready`)).ok,
  })
  const url = `http://127.0.0.1:${server.port}`
  return {
    ...server,
    url,
    async targets(): Promise<TargetState[]> {
      const body = (await (await fetch(`${url}/api/v1/targets`)).json()) as {
        data: { activeTargets: TargetState[] }
      }
      return body.data.activeTargets
    },
    /** An instant query through the HTTP API: each series' labels and value. */
    async query(promql: string): Promise<{ metric: Record<string, string>; value: number }[]> {
      const response = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: promql })}`)
      const body = (await response.json()) as {
        status: string
        error?: string
        data: { result: { metric: Record<string, string>; value: [number, string] }[] }
      }
      if (body.status !== 'success') throw new Error(`${promql}: ${body.error}`)
      return body.data.result.map((series) => ({ metric: series.metric, value: Number(series.value[1]) }))
    },
  }
}
