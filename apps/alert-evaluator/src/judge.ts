import { type AlertRule, conditionHolds, type DeviceColumns } from '@iotflow/contracts'
import type { AlertDecision, NewAlertTransition, StoredAlertState } from '@iotflow/db'

/** A threshold rule, its target and test complete (the API refuses any other). */
export type ThresholdRule = AlertRule & {
  kind: 'threshold'
  field: string
  condition: NonNullable<AlertRule['condition']>
  threshold: number
}

/** A no_data rule: fires when a targeted device sends nothing for `no_data_seconds`. */
export type NoDataRule = AlertRule & { kind: 'no_data'; no_data_seconds: number }

/** A rule the evaluator judges: complete, of either kind. */
export type EvaluatedRule = ThresholdRule | NoDataRule

export const isThresholdRule = (rule: AlertRule): rule is ThresholdRule =>
  rule.kind === 'threshold' && rule.field !== null && rule.condition !== null && rule.threshold !== null

export const isEvaluatedRule = (rule: AlertRule): rule is EvaluatedRule =>
  isThresholdRule(rule) || (rule.kind === 'no_data' && rule.no_data_seconds !== null)

/** Whether `rule` watches the device: listed, of its type, or every device. */
export function ruleTargets(rule: AlertRule, deviceId: number, deviceType: string | undefined): boolean {
  if (rule.device_ids !== null) return rule.device_ids.includes(deviceId)
  if (rule.device_type !== null) return rule.device_type === deviceType
  return true
}

/**
 * One point's value of a rule's field: its time (epoch ms) and value (a boolean counts as 1 or 0);
 * for a no_data rule every point of the device counts, with no value.
 */
export interface Sample {
  t: number
  value: number | null
}

/** The samples of each (rule, device) in some device batches, keyed `rule:device`, oldest first. */
export type SamplesByKey = Map<string, { rule: EvaluatedRule; device_id: number; samples: Sample[] }>

export const stateKey = (ruleId: number, deviceId: number) => `${ruleId}:${deviceId}`

/**
 * Picks out of device batches the samples every rule watches. Points without the field, or whose
 * value is a string, are not the rule's business.
 */
export function samplesOf(batches: DeviceColumns[], rules: EvaluatedRule[]): SamplesByKey {
  const found: SamplesByKey = new Map()
  for (const batch of batches) {
    for (const rule of rules) {
      if (!ruleTargets(rule, batch.device_id, batch.device_type)) continue
      if (rule.kind === 'no_data') {
        if (batch.t.length === 0) continue
        const key = stateKey(rule.id, batch.device_id)
        const entry = found.get(key) ?? { rule, device_id: batch.device_id, samples: [] }
        found.set(key, entry)
        for (const t of batch.t) entry.samples.push({ t: t as number, value: null })
        continue
      }
      const column = batch.values[batch.fields.indexOf(rule.field)]
      if (!column) continue
      const key = stateKey(rule.id, batch.device_id)
      let entry = found.get(key)
      for (let i = 0; i < column.length; i++) {
        const raw = column[i]
        const value = typeof raw === 'boolean' ? Number(raw) : raw
        if (typeof value !== 'number') continue
        if (!entry) {
          entry = { rule, device_id: batch.device_id, samples: [] }
          found.set(key, entry)
        }
        entry.samples.push({ t: batch.t[i] as number, value })
      }
    }
  }
  for (const entry of found.values()) entry.samples.sort((a, b) => a.t - b.t)
  return found
}

/**
 * Runs one (rule, device) through its samples, oldest first and by the points' own times: inactive
 * → pending → firing → resolved (docs/alerts.md), a sample not newer than the last one evaluated
 * changing nothing (a redelivered batch, a late point). Returns the new state and its transitions;
 * the same state object when no sample was new.
 */
export function judge(
  rule: EvaluatedRule,
  initial: StoredAlertState,
  samples: Sample[],
): { state: StoredAlertState; transitions: NewAlertTransition[] } {
  if (rule.kind === 'no_data') return judgeNoData(rule, initial, samples)
  // One private copy, made at the first new sample and changed in place: a copy per sample cost
  // an allocation per point judged (docs/benchmarks.md, scenario 9).
  let state = initial
  const transitions: NewAlertTransition[] = []
  const move = (to: StoredAlertState['state'], sample: Sample, firing = state.firing_since) => {
    transitions.push({
      rule_id: rule.id,
      device_id: state.device_id,
      from: state.state,
      to,
      at: sample.t,
      value: sample.value,
      firing_since: firing,
    })
    state.state = to
    state.since = sample.t
    state.firing_since = firing
  }
  for (const sample of samples) {
    if (state.last_point_at !== null && sample.t <= state.last_point_at) continue
    if (state === initial) state = { ...initial }
    state.last_point_at = sample.t
    state.value = sample.value
    if (sample.value === null) continue
    const holds = conditionHolds(rule.condition, sample.value, rule.threshold)
    switch (state.state) {
      case 'inactive':
      case 'resolved':
        if (holds && rule.for_seconds === 0) move('firing', sample, sample.t)
        else if (holds) move('pending', sample)
        break
      case 'pending':
        if (!holds) move('inactive', sample)
        else if (sample.t - (state.since ?? sample.t) >= rule.for_seconds * 1000)
          move('firing', sample, sample.t)
        break
      case 'firing':
        if (!conditionHolds(rule.condition, sample.value, rule.clear_threshold ?? rule.threshold))
          move('resolved', sample)
        break
    }
  }
  return { state, transitions }
}

/**
 * The stream's half of a no_data rule: every point newer than the last one seen moves
 * `last_point_at` on (the clock's half, `fireSilent` in PostgreSQL, fires from it), and a firing
 * alert resolves at the first point newer than the moment it fired. A point older than that moment
 * (a device emptying its backlog) shows data from the silence itself: it resolves nothing, as any
 * point older than a rule's last transition.
 */
function judgeNoData(
  rule: NoDataRule,
  initial: StoredAlertState,
  samples: Sample[],
): { state: StoredAlertState; transitions: NewAlertTransition[] } {
  let state = initial
  const transitions: NewAlertTransition[] = []
  for (const sample of samples) {
    if (state.last_point_at !== null && sample.t <= state.last_point_at) continue
    if (state === initial) state = { ...initial }
    state.last_point_at = sample.t
    if (state.state === 'firing' && sample.t > (state.since ?? Number.NEGATIVE_INFINITY)) {
      transitions.push({
        rule_id: rule.id,
        device_id: state.device_id,
        from: 'firing',
        to: 'resolved',
        at: sample.t,
        value: null,
        firing_since: state.firing_since,
      })
      state.state = 'resolved'
      state.since = sample.t
    }
  }
  return { state, transitions }
}

/** Judges every (rule, device) of `found` from its locked state: what to store. */
export function decide(found: SamplesByKey, states: StoredAlertState[]): AlertDecision {
  const decision: AlertDecision = { states: [], transitions: [] }
  for (const current of states) {
    const entry = found.get(stateKey(current.rule_id, current.device_id))
    if (!entry) continue
    const { state, transitions } = judge(entry.rule, current, entry.samples)
    if (state !== current) decision.states.push(state)
    decision.transitions.push(...transitions)
  }
  return decision
}
