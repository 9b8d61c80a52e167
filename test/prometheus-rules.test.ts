import { spawn } from 'node:child_process'
import { describe, expect, it } from 'vitest'

/** Runs promtool (Debian's prometheus package) with `args`; resolves with its exit code and output. */
function promtool(...args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, output }))
  })
}

describe("IoTFlow's own Prometheus alerting rules (infra/prometheus)", () => {
  it('are valid rules, loaded by the compose Prometheus config', async () => {
    const rules = await promtool('check', 'rules', 'infra/prometheus/iotflow-rules.yml')
    expect(rules.code, rules.output).toBe(0)
    expect(rules.output).toContain('SUCCESS: 3 rules found')
    const config = await promtool('check', 'config', 'infra/prometheus/prometheus.yml')
    expect(config.code, config.output).toBe(0)
    expect(config.output).toContain('SUCCESS: 3 rules found')
  })

  it('fire when they should and stay quiet otherwise (promtool test rules)', async () => {
    const tested = await promtool('test', 'rules', 'infra/prometheus/iotflow-rules.test.yml')
    expect(tested.code, tested.output).toBe(0)
  })
})
