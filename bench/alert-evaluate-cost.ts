/**
 * Micro-benchmark of the alert evaluator's per-batch work (apps/alert-evaluator/src/evaluator.ts):
 * `samplesOf` + `states.evaluate` + `decide` on gathered batches of device batches, against a fresh
 * database on the local PostgreSQL, one connection (the evaluator writes one batch at a time).
 *
 *   pnpm bench:alert-evaluate [--devices 1000] [--rules 50] [--every] [--points 100] [--gather 10] [--rounds 20]
 *
 * Rules are `temperature > 50`; rule k watches the devices whose index is k modulo `--rules` (as
 * scenario 9), or every device with `--every`. Each round sends `--points` points per device, in
 * gathered batches of `--gather` device batches; every 50th device crosses the threshold in one round
 * and falls back in the next. A first round (creating the states) is not measured. Prints CPU ms per
 * 1,000 points of this process and of its PostgreSQL backend (/proc/<pid>/stat), and statements per
 * gathered batch (BEGIN and COMMIT included).
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { type DeviceColumns, ruleDefinitionFrom } from '@iotflow/contracts'
import { createAlertRulesRepository, createAlertStatesRepository } from '@iotflow/db'
import { createTestDatabase } from '@iotflow/testkit'
import postgres from 'postgres'
import { decide, isEvaluatedRule, samplesOf } from '../apps/alert-evaluator/src/judge.js'

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '1000' },
    rules: { type: 'string', default: '50' },
    every: { type: 'boolean', default: false },
    points: { type: 'string', default: '100' },
    gather: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '20' },
  },
})
const DEVICES = Number(args.devices)
const RULES = Number(args.rules)
const POINTS = Number(args.points)
const GATHER = Number(args.gather)
const ROUNDS = Number(args.rounds)

/** utime + stime of a process, in ms (clock ticks of 10 ms). */
function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

const db = await createTestDatabase()
let statements = 0
const sql = postgres(db.url, {
  max: 1,
  onnotice: () => {},
  types: { bigint: postgres.BigInt },
  debug: () => {
    statements++
  },
})
try {
  await sql`
    INSERT INTO devices (name, api_key_hash, api_key_prefix)
    SELECT 'bench-' || i, decode(md5(i::text), 'hex'), 'iot_' FROM generate_series(1, ${DEVICES}) AS i`
  const deviceIds = (await sql<{ id: number }[]>`SELECT id FROM devices ORDER BY id`).map((row) => row.id)
  const rulesRepository = createAlertRulesRepository(sql)
  for (let k = 0; k < RULES; k++) {
    const watched = deviceIds.filter((_, index) => index % RULES === k)
    await rulesRepository.create(
      ruleDefinitionFrom({
        name: `bench rule ${k}`,
        field: 'temperature',
        condition: '>',
        threshold: 50,
        ...(!args.every && { device_ids: watched }),
      }),
    )
  }
  const rules = (await rulesRepository.list()).filter(isEvaluatedRule)
  const states = createAlertStatesRepository(sql)
  const [backend] = await sql<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`
  const pid = backend?.pid as number

  const start = Date.UTC(2026, 10, 30)
  const round = (r: number): DeviceColumns[] =>
    deviceIds.map((device_id, index) => {
      const over = index % 50 === 0 && r % 2 === 1
      const t = Array.from({ length: POINTS }, (_, i) => start + (r * POINTS + i) * 1000)
      const values = t.map((_, i) => (over && i >= POINTS / 2 ? 60 : 20 + (i % 10)))
      return { device_id, received_at: Date.now(), t, fields: ['temperature'], values: [values] }
    })
  // Built before the clock starts: the bench's own data is not the evaluator's cost.
  const rounds = Array.from({ length: ROUNDS + 1 }, (_, r) => round(r))
  const evaluateRound = async (r: number) => {
    const batches = rounds[r] as DeviceColumns[]
    let transitions = 0
    for (let i = 0; i < batches.length; i += GATHER) {
      const found = samplesOf(batches.slice(i, i + GATHER), rules)
      const keys = [...found.values()].map(({ rule, device_id }) => ({ rule_id: rule.id, device_id }))
      transitions += await states.evaluate(keys, (locked) => decide(found, locked))
    }
    return transitions
  }

  await evaluateRound(0)
  const gathered = Math.ceil(DEVICES / GATHER) * ROUNDS
  const points = DEVICES * POINTS * ROUNDS
  statements = 0
  const ownBefore = process.cpuUsage()
  const backendBefore = processCpuMs(pid)
  const wallBefore = performance.now()
  let transitions = 0
  for (let r = 1; r <= ROUNDS; r++) transitions += await evaluateRound(r)
  const wall = performance.now() - wallBefore
  const own = process.cpuUsage(ownBefore)
  const backendCpu = processCpuMs(pid) - backendBefore
  const [stored] = await sql<{ count: number }[]>`SELECT count(*)::int AS count FROM alert_transitions`
  const count = stored?.count
  const perThousand = (ms: number) => ((ms / points) * 1000).toFixed(2)
  console.log(
    `${DEVICES} devices, ${RULES} rules (${args.every ? 'every rule on every device' : 'one rule per device'}), ` +
      `${POINTS} points per device batch, ${GATHER} device batches per gathered batch, ${ROUNDS} rounds`,
  )
  console.log(
    `points judged: ${points}; gathered batches: ${gathered}; transitions: ${transitions} (${count} stored)`,
  )
  console.log(`wall: ${wall.toFixed(0)} ms`)
  console.log(`this process CPU ms per 1,000 points: ${perThousand((own.user + own.system) / 1000)}`)
  console.log(`PostgreSQL backend CPU ms per 1,000 points: ${perThousand(backendCpu)}`)
  console.log(`statements per gathered batch: ${(statements / gathered).toFixed(2)}`)
} finally {
  await sql.end({ timeout: 5 })
  await db.drop()
}
