import { NO_VALUE } from '@iotflow/contracts'
import { dataJson, metadataJson, type TelemetryRow } from './telemetry-rows.js'

/** The columns a COPY of telemetry rows fills, in the order `encodeTelemetryCopy` writes them. */
export const TELEMETRY_COPY_COLUMNS = [
  'device_id',
  'time',
  'type',
  'data',
  'metadata',
  'received_at',
] as const

// PostgreSQL's binary COPY format: the signature, a flags word and an empty header extension.
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')
const FIELDS_PER_ROW = TELEMETRY_COPY_COLUMNS.length
/** timestamptz travels as microseconds since 2000-01-01 UTC. */
const POSTGRES_EPOCH_MS = Date.UTC(2000, 0, 1)
const TWO_POW_32 = 2 ** 32
/** The version byte jsonb's binary input expects before the JSON text. */
const JSONB_VERSION = 1

/**
 * A growing buffer the rows are written into. Strings are written in place (no Buffer per value);
 * room is reserved for their worst case, three bytes per UTF-16 unit.
 */
class CopyBuffer {
  buffer = Buffer.allocUnsafe(1 << 16)
  length = 0

  reserve(bytes: number) {
    if (this.length + bytes <= this.buffer.length) return
    let size = this.buffer.length * 2
    while (size < this.length + bytes) size *= 2
    const grown = Buffer.allocUnsafe(size)
    this.buffer.copy(grown, 0, 0, this.length)
    this.buffer = grown
  }

  int16(value: number) {
    this.reserve(2)
    this.length = this.buffer.writeInt16BE(value, this.length)
  }

  int32(value: number) {
    this.reserve(4)
    this.length = this.buffer.writeInt32BE(value, this.length)
  }

  /** A field of 8 bytes: epoch ms as a timestamptz. */
  timestamptz(ms: number) {
    this.reserve(12)
    // Microseconds since 2000 stay below 2^53 until the year 2285: exact as a double.
    const micros = (ms - POSTGRES_EPOCH_MS) * 1000
    const high = Math.floor(micros / TWO_POW_32)
    this.length = this.buffer.writeInt32BE(8, this.length)
    this.length = this.buffer.writeInt32BE(high, this.length)
    this.length = this.buffer.writeUInt32BE(micros - high * TWO_POW_32, this.length)
  }

  /** A field already encoded (a text's UTF-8 bytes, or jsonb's with its version byte): its length and bytes. */
  encoded(bytes: Buffer) {
    this.reserve(4 + bytes.length)
    this.length = this.buffer.writeInt32BE(bytes.length, this.length)
    this.buffer.set(bytes, this.length)
    this.length += bytes.length
  }

  /** A text field (or jsonb with its version byte): its length, then its UTF-8 bytes. */
  text(value: string | null, jsonb = false) {
    if (value === null) return this.int32(-1)
    const prefix = jsonb ? 1 : 0
    this.reserve(4 + prefix + value.length * 3)
    const start = this.length + 4
    if (jsonb) this.buffer[start] = JSONB_VERSION
    const written = prefix + this.buffer.write(value, start + prefix, 'utf8')
    this.buffer.writeInt32BE(written, this.length)
    this.length = start + written
  }
}

/**
 * The encoded field of texts that many rows share (the types and metadata of a line protocol
 * series), made once per COPY: copying bytes costs a third of encoding the text again per row.
 * Keyed by the text itself, which rows sharing it share as one string (its hash made once).
 */
class SharedFields {
  private readonly fields = new Map<string, Buffer>()

  of(text: string, jsonb: boolean): Buffer {
    let field = this.fields.get(text)
    if (field === undefined) {
      const prefix = jsonb ? 1 : 0
      field = Buffer.allocUnsafe(prefix + Buffer.byteLength(text))
      if (jsonb) field[0] = JSONB_VERSION
      field.write(text, prefix, 'utf8')
      this.fields.set(text, field)
    }
    return field
  }
}

/**
 * The rows as one binary COPY stream (header, rows, trailer). Binary, not text: PostgreSQL then reads
 * ids and times as they are stored instead of parsing digits and dates, and nothing needs escaping.
 */
export function encodeTelemetryCopy(rows: TelemetryRow[]): Buffer {
  const out = new CopyBuffer()
  const shared = new SharedFields()
  out.reserve(SIGNATURE.length + 8)
  out.length += SIGNATURE.copy(out.buffer, 0)
  out.int32(0)
  out.int32(0)
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as TelemetryRow
    // Room for every row at the first row's size and a quarter more: the buffer is then rarely
    // copied into a larger one as it grows.
    if (i === 1) out.reserve(Math.ceil((out.length * rows.length * 5) / 4))
    out.int16(FIELDS_PER_ROW)
    out.int32(4)
    out.int32(row.device_id)
    out.timestamptz(row.ms)
    if (row.type === null) out.int32(-1)
    else out.encoded(shared.of(row.type, false))
    out.text(dataJson(row), true)
    const metadata = metadataJson(row)
    // A merged row's metadata is its own: encoded in place, not kept.
    if (metadata === null || row.metadataIndex === NO_VALUE) out.text(metadata, true)
    else out.encoded(shared.of(metadata, true))
    out.timestamptz(row.received_ms)
  }
  out.int16(-1)
  return out.buffer.subarray(0, out.length)
}
