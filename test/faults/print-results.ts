import type { ScenarioResult } from './fault-scenario.js'

const n = (value: number) => value.toLocaleString('en-US')

/** The suite's figures: one row per scenario, then each scenario's checks, retried answers and notes. */
export function printResults(results: ScenarioResult[]) {
  const rows = results.map((r) => ({
    scenario: r.name,
    sent: n(r.sent),
    acknowledged: n(r.acknowledged),
    'stored postgres': n(r.storedPostgres),
    'stored influxdb': n(r.storedInflux),
    lost: `${r.lostPostgres} / ${r.lostInflux}`,
    duplicated: r.duplicated,
    phantom: r.phantom,
    agree: r.storesAgree ? 'yes' : 'NO',
    'drain s': r.drainSeconds.toFixed(1),
    'recovery s': r.recoverySeconds === undefined ? '-' : r.recoverySeconds.toFixed(1),
  }))
  const columns = Object.keys(rows[0] ?? {}) as (keyof (typeof rows)[number])[]
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((row) => String(row[c]).length)))
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(' | ')
  const out = [
    '',
    'fault suite: lost = postgres / influxdb; phantom = stored but never sent (or altered);',
    "recovery = from a writer's SIGKILL until the jobs it held were written again",
    line(columns),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((row) => line(columns.map((c) => String(row[c])))),
    '',
  ]
  for (const r of results) {
    out.push(`${r.name}:`)
    const retried = Object.entries(r.retriedOutcomes)
    out.push(
      `  answers retried by the client: ${retried.length ? retried.map(([k, v]) => `${k}×${v}`).join(', ') : 'none'}`,
    )
    for (const [check, passed] of Object.entries(r.checks)) out.push(`  ${passed ? 'ok  ' : 'FAIL'} ${check}`)
    for (const note of r.notes) out.push(`  ${note}`)
  }
  console.log(out.join('\n'))
}
