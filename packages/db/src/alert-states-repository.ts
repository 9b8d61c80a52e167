import type {
  Alert,
  AlertHistoryQuery,
  AlertListQuery,
  AlertState,
  AlertTransition,
} from '@iotflow/contracts'
import type { Sql } from './client.js'

/** The state of one (rule, device), times as epoch ms. */
export interface StoredAlertState {
  rule_id: number
  device_id: number
  state: AlertState
  /** The time of the point that made this state; null while never evaluated. */
  since: number | null
  value: number | null
  /** When the current or last firing began (Alertmanager's startsAt of a resolved alert). */
  firing_since: number | null
  /** The newest point evaluated; a point not newer changes nothing. */
  last_point_at: number | null
}

export interface NewAlertTransition {
  rule_id: number
  device_id: number
  from: AlertState
  to: AlertState
  at: number
  value: number | null
  /** When the firing this transition starts or ends began (Alertmanager's startsAt). */
  firing_since: number | null
}

/** A stored transition with what a notification needs of its rule. */
export interface NotifiableTransition extends NewAlertTransition {
  id: number
  rule_name: string
  severity: string
  labels: Record<string, string>
  /** Whether its rule has a webhook (its URL and secret are read when the notification is sent). */
  webhook: boolean
}

/** What an evaluation decides for the states it was given: the changed ones, and the transitions. */
export interface AlertDecision {
  states: StoredAlertState[]
  transitions: NewAlertTransition[]
}

const ms = (date: Date | null) => (date === null ? null : date.getTime())
const iso = (time: number | null) => (time === null ? null : new Date(time).toISOString())

interface StateRow {
  rule_id: number
  device_id: number
  state: AlertState
  since: Date | null
  value: number | null
  firing_since: Date | null
  last_point_at: Date | null
}

type NotifiableRow = Omit<NotifiableTransition, 'at' | 'firing_since' | 'id'> & {
  id: bigint
  at: Date
  firing_since: Date | null
}

const notifiableOf = (row: NotifiableRow): NotifiableTransition => ({
  ...row,
  id: Number(row.id),
  at: row.at.getTime(),
  firing_since: ms(row.firing_since),
})

/** What `judgeLocked` answers when some keys have no state yet (its transaction rolled back). */
const MISSING_STATES = Symbol('missing states')
class MissingStates extends Error {}

/** Alert states and their history (docs/alerts.md). */
export function createAlertStatesRepository(sql: Sql) {
  /**
   * One transaction: locks the states of the keys (sorted) in key order, so concurrent
   * evaluations never deadlock, judges them, and stores the changed states and their transitions
   * in one statement. Without `allowMissing`, a key without a state rolls it back (steady state:
   * every key has one, and no INSERT is sent).
   */
  async function judgeLocked(
    rules: number[],
    devices: number[],
    decide: (states: StoredAlertState[]) => AlertDecision,
    allowMissing: boolean,
  ): Promise<number | typeof MISSING_STATES> {
    try {
      return await sql.begin(async (tx) => {
        const rows = await tx<StateRow[]>`
          SELECT s.rule_id, s.device_id, s.state, s.since, s.value, s.firing_since, s.last_point_at
          FROM alert_states s
          JOIN unnest(${rules}::int[], ${devices}::int[]) AS x(r, d) ON s.rule_id = x.r AND s.device_id = x.d
          ORDER BY s.rule_id, s.device_id
          FOR UPDATE OF s`
        if (!allowMissing && rows.length < rules.length) throw new MissingStates()
        const decision = decide(
          rows.map((row) => ({
            ...row,
            since: ms(row.since),
            firing_since: ms(row.firing_since),
            last_point_at: ms(row.last_point_at),
          })),
        )
        const changed = decision.states
        const transitions = decision.transitions
        if (changed.length === 0 && transitions.length === 0) return 0
        await tx`
          WITH updated AS (
            UPDATE alert_states s SET
              state = x.state, since = x.since, value = x.value, firing_since = x.firing_since,
              last_point_at = x.last_point_at, updated_at = now()
            FROM unnest(
              ${changed.map((s) => s.rule_id)}::int[], ${changed.map((s) => s.device_id)}::int[],
              ${changed.map((s) => s.state)}::text[], ${changed.map((s) => iso(s.since))}::timestamptz[],
              ${changed.map((s) => s.value)}::float8[], ${changed.map((s) => iso(s.firing_since))}::timestamptz[],
              ${changed.map((s) => iso(s.last_point_at))}::timestamptz[]
            ) AS x(rule_id, device_id, state, since, value, firing_since, last_point_at)
            WHERE s.rule_id = x.rule_id AND s.device_id = x.device_id
          )
          INSERT INTO alert_transitions (rule_id, device_id, from_state, to_state, at, value, firing_since)
          SELECT * FROM unnest(
            ${transitions.map((t) => t.rule_id)}::int[], ${transitions.map((t) => t.device_id)}::int[],
            ${transitions.map((t) => t.from)}::text[], ${transitions.map((t) => t.to)}::text[],
            ${transitions.map((t) => iso(t.at))}::timestamptz[], ${transitions.map((t) => t.value)}::float8[],
            ${transitions.map((t) => iso(t.firing_since))}::timestamptz[])`
        return transitions.length
      })
    } catch (error) {
      if (error instanceof MissingStates) return MISSING_STATES
      throw error
    }
  }

  /** The columns of a NotifiableTransition, from `alert_transitions t` joined with `alert_rules r`. */
  const notifiable = sql`
    t.id, t.rule_id, t.device_id, t.from_state AS "from", t.to_state AS "to", t.at, t.value,
    t.firing_since, r.name AS rule_name, r.severity, r.labels, r.webhook_url IS NOT NULL AS webhook`

  return {
    /**
     * Locks the states of `keys` (creating the missing ones, inactive), lets `decide` judge them,
     * and stores what it changed with its transitions, all in one transaction: two evaluators on
     * the same (rule, device) take turns, and a crash leaves either all of a decision or none.
     * Keys of a rule deleted meanwhile are skipped.
     */
    async evaluate(
      keys: { rule_id: number; device_id: number }[],
      decide: (states: StoredAlertState[]) => AlertDecision,
    ): Promise<number> {
      if (keys.length === 0) return 0
      const sorted = [...keys].sort((a, b) => a.rule_id - b.rule_id || a.device_id - b.device_id)
      const rules = sorted.map((k) => k.rule_id)
      const devices = sorted.map((k) => k.device_id)
      const judged = await judgeLocked(rules, devices, decide, false)
      if (judged !== MISSING_STATES) return judged
      // Created outside the locking transaction, so that it always locks in key order (an
      // INSERT inside it would lock new rows after existing ones of higher keys); a crash between
      // leaves inactive rows without a point, which nothing reads.
      await sql`
        INSERT INTO alert_states (rule_id, device_id)
        SELECT x.r, x.d FROM unnest(${rules}::int[], ${devices}::int[]) AS x(r, d)
        WHERE EXISTS (SELECT 1 FROM alert_rules WHERE id = x.r)
        ORDER BY x.r, x.d
        ON CONFLICT DO NOTHING`
      return (await judgeLocked(rules, devices, decide, true)) as number
    },

    /**
     * The clock's half of no_data rules (`ruleIds`): every (rule, device) not firing whose newest
     * point is `no_data_seconds` older than PostgreSQL's clock fires, at the moment the silence
     * reached it, its transition joining the outbox. Rows are locked with SKIP LOCKED and re-checked
     * under the lock, so evaluators running this at once make one transition per silence. Returns
     * how many fired.
     */
    async fireSilent(ruleIds: number[]): Promise<number> {
      if (ruleIds.length === 0) return 0
      const fired = await sql`
        WITH due AS (
          SELECT s.rule_id, s.device_id, s.state AS from_state,
                 s.last_point_at + make_interval(secs => r.no_data_seconds) AS at
          FROM alert_states s JOIN alert_rules r ON r.id = s.rule_id
          WHERE s.rule_id = ANY(${ruleIds}::int[]) AND r.kind = 'no_data' AND s.state <> 'firing' AND s.last_point_at IS NOT NULL
            AND s.last_point_at + make_interval(secs => r.no_data_seconds) <= now()
          ORDER BY s.rule_id, s.device_id
          FOR UPDATE OF s SKIP LOCKED
        ), fired AS (
          UPDATE alert_states s SET state = 'firing', since = due.at, firing_since = due.at, updated_at = now()
          FROM due WHERE s.rule_id = due.rule_id AND s.device_id = due.device_id
          RETURNING s.rule_id, s.device_id, due.from_state, due.at
        )
        INSERT INTO alert_transitions (rule_id, device_id, from_state, to_state, at, value, firing_since)
        SELECT rule_id, device_id, from_state, 'firing', at, NULL, at FROM fired ORDER BY rule_id, device_id`
      return fired.count
    },

    /**
     * Transitions not yet handed to delivery, oldest first (the outbox): an evaluator that died
     * after storing a transition and before queueing its notification leaves it here for the next.
     */
    async undelivered(limit: number): Promise<NotifiableTransition[]> {
      const rows = await sql<NotifiableRow[]>`
        SELECT ${notifiable}
        FROM alert_transitions t
        JOIN alert_rules r ON r.id = t.rule_id
        WHERE NOT t.delivery_queued
        ORDER BY t.id LIMIT ${limit}`
      return rows.map(notifiableOf)
    },

    /**
     * The newest transition to firing or resolved of each (rule, device) of `keys`: what
     * Alertmanager should hold now. A pair's transitions are written under its state's lock, so
     * the highest id is the latest. A pair of a rule deleted, or never fired, has none.
     */
    async latestNotified(keys: { rule_id: number; device_id: number }[]): Promise<NotifiableTransition[]> {
      if (keys.length === 0) return []
      const rows = await sql<NotifiableRow[]>`
        SELECT ${notifiable}
        FROM unnest(${keys.map((k) => k.rule_id)}::int[], ${keys.map((k) => k.device_id)}::int[]) AS x(r, d)
        CROSS JOIN LATERAL (
          SELECT * FROM alert_transitions
          WHERE rule_id = x.r AND device_id = x.d AND to_state IN ('firing', 'resolved')
          ORDER BY id DESC LIMIT 1
        ) t
        JOIN alert_rules r ON r.id = t.rule_id`
      return rows.map(notifiableOf)
    },

    /** The (rule, device) of every firing alert (for sending them again). */
    async firing(): Promise<{ rule_id: number; device_id: number }[]> {
      return sql<{ rule_id: number; device_id: number }[]>`
        SELECT rule_id, device_id FROM alert_states WHERE state = 'firing' ORDER BY rule_id, device_id`
    },

    /** Firing alerts per rule name and severity (for iotflow_alerts_firing). */
    async firingCounts(): Promise<{ rule: string; severity: string; count: number }[]> {
      return sql<{ rule: string; severity: string; count: number }[]>`
        SELECT r.name AS rule, r.severity, count(*)::int AS count
        FROM alert_states s JOIN alert_rules r ON r.id = s.rule_id
        WHERE s.state = 'firing' GROUP BY r.name, r.severity`
    },

    async markQueued(ids: number[]): Promise<void> {
      if (ids.length === 0) return
      await sql`UPDATE alert_transitions SET delivery_queued = true WHERE id = ANY(${ids}::bigint[])`
    },

    /** Alerts that are pending, firing or resolved (never the inactive ones), by rule and device. */
    async list(query: AlertListQuery): Promise<Alert[]> {
      const rows = await sql<(Omit<Alert, 'since'> & { since: Date })[]>`
        SELECT rule_id, device_id, state, since, value FROM alert_states
        WHERE state <> 'inactive' AND since IS NOT NULL
          AND (${query.state ?? null}::text IS NULL OR state = ${query.state ?? null})
          AND (${query.device_id ?? null}::int IS NULL OR device_id = ${query.device_id ?? null})
          AND (${query.rule_id ?? null}::int IS NULL OR rule_id = ${query.rule_id ?? null})
        ORDER BY rule_id, device_id`
      return rows.map((row) => ({ ...row, since: row.since.toISOString() }))
    },

    /** Transitions, newest first. */
    async history(query: AlertHistoryQuery): Promise<AlertTransition[]> {
      const rows = await sql<
        (Omit<AlertTransition, 'id' | 'at' | 'recorded_at'> & { id: bigint; at: Date; recorded_at: Date })[]
      >`
        SELECT id, rule_id, device_id, from_state AS "from", to_state AS "to", at, value, recorded_at
        FROM alert_transitions
        WHERE (${query.device_id ?? null}::int IS NULL OR device_id = ${query.device_id ?? null})
          AND (${query.rule_id ?? null}::int IS NULL OR rule_id = ${query.rule_id ?? null})
        ORDER BY id DESC LIMIT ${query.limit}`
      return rows.map((row) => ({
        ...row,
        id: Number(row.id),
        at: row.at.toISOString(),
        recorded_at: row.recorded_at.toISOString(),
      }))
    },
  }
}

export type AlertStatesRepository = ReturnType<typeof createAlertStatesRepository>
