import type { DeviceColumns } from '@iotflow/contracts'

const DAY_MS = 86_400_000

/** The day partition of `telemetry` a point at `ms` goes to: `telemetry_pYYYYMMDD` (UTC), as telemetry_ensure_partition names it. */
export function telemetryPartitionOf(ms: number): string {
  return `telemetry_p${new Date(Math.floor(ms / DAY_MS) * DAY_MS).toISOString().slice(0, 10).replaceAll('-', '')}`
}

/** The day partitions the points of `batches` go to, sorted (a traced store call names them). */
export function telemetryPartitionsOf(batches: readonly DeviceColumns[]): string[] {
  const days = new Set<number>()
  for (const batch of batches) for (const t of batch.t) days.add(Math.floor(t / DAY_MS))
  return [...days].sort((a, b) => a - b).map((day) => telemetryPartitionOf(day * DAY_MS))
}
