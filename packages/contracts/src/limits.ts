/** What one telemetry request may hold. Defaults below; each is configurable (TELEMETRY_* env). */
export interface TelemetryLimits {
  /** Points in one request (more: 413). */
  maxPoints: number
  /** Fields in one point, after flattening. */
  maxFields: number
  /** Characters in a field name, after flattening (`gps.lat` counts 7). */
  maxFieldNameLength: number
  /** Characters in a string value. */
  maxStringLength: number
  /** Levels of nested objects inside `data` that are flattened to dotted names. */
  maxNesting: number
  /** Bytes of a point's `metadata`, as JSON. */
  maxMetadataBytes: number
  /** Earliest accepted time, epoch ms. */
  minTimeMs: number
  /** How far ahead of the receive time a point may be, ms. */
  maxFutureMs: number
  /** How old a point may be, ms (the retention period; 0 = no limit). Older ones would be dropped at once. */
  maxAgeMs: number
}

export const defaultTelemetryLimits: TelemetryLimits = {
  maxPoints: 10_000,
  maxFields: 100,
  maxFieldNameLength: 128,
  maxStringLength: 4096,
  maxNesting: 4,
  maxMetadataBytes: 4096,
  minTimeMs: Date.UTC(2000, 0, 1),
  maxFutureMs: 24 * 60 * 60 * 1000,
  maxAgeMs: 0,
}

/** Longest `type` tag value. */
export const MAX_TYPE_LENGTH = 64
