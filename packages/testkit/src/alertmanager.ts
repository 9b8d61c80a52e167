import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startPrivateServer } from './private-server.js'

export interface PrivateAlertmanagerOptions {
  /** Where Alertmanager posts its notifications (its webhook receiver, with resolved ones too). */
  webhookUrl: string
}

/**
 * A private Prometheus Alertmanager (Debian's prometheus-alertmanager) on a free port, routing
 * every alert to one webhook. Grouping waits are tiny so a test hears a notification within about
 * a second, and the repeat interval long so it hears each one once; clustering is off.
 */
export async function startPrivateAlertmanager(options: PrivateAlertmanagerOptions) {
  const server = await startPrivateServer({
    name: 'alertmanager',
    command: 'prometheus-alertmanager',
    args: (dir, port) => {
      const file = join(dir, 'alertmanager.yml')
      const config = [
        'route:',
        '  receiver: webhook',
        '  group_by: [alertname, device_id]',
        '  group_wait: 100ms',
        '  group_interval: 500ms',
        '  repeat_interval: 1h',
        'receivers:',
        '  - name: webhook',
        '    webhook_configs:',
        `      - url: ${JSON.stringify(options.webhookUrl)}`,
        '        send_resolved: true',
      ]
      writeFileSync(file, `${config.join('\n')}\n`)
      return [
        `--config.file=${file}`,
        `--storage.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--cluster.listen-address=',
        '--log.level=warn',
      ]
    },
    answers: async (port) => (await fetch(`http://127.0.0.1:${port}/-/ready`)).ok,
  })
  return { ...server, url: `http://127.0.0.1:${server.port}` }
}
