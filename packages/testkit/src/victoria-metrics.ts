import { startPrivateServer } from './private-server.js'

export interface ExportedSeries {
  metric: Record<string, string>
  values: number[]
  timestamps: number[]
}

/**
 * A private VictoriaMetrics: it accepts InfluxDB's /api/v2/write, so the writer's v2 path can be
 * tested against a real server here. Line `telemetry,... humidity=50` becomes `telemetry_humidity{...}`.
 */
export async function startPrivateVictoriaMetrics() {
  const server = await startPrivateServer({
    name: 'victoria-metrics',
    command: 'victoria-metrics',
    args: (dir, port) => [
      `-httpListenAddr=127.0.0.1:${port}`,
      `-storageDataPath=${dir}`,
      '-retentionPeriod=100y',
      '-loggerLevel=ERROR',
    ],
    answers: async (port) => (await fetch(`http://127.0.0.1:${port}/health`)).ok,
  })
  const url = `http://127.0.0.1:${server.port}`
  return {
    ...server,
    url,
    /** Every series matching the selector, made visible first (VictoriaMetrics buffers new data). */
    async exportSeries(selector: string): Promise<ExportedSeries[]> {
      await fetch(`${url}/internal/force_flush`)
      const response = await fetch(`${url}/api/v1/export`, {
        method: 'POST',
        body: new URLSearchParams({ 'match[]': selector }),
      })
      const text = await response.text()
      return text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as ExportedSeries)
    },
  }
}
