import type { FieldValue } from './telemetry.js'

/** The time unit of line protocol timestamps (the `precision` query parameter). */
export type Precision = 'ns' | 'us' | 'ms' | 's'
export const PRECISIONS: readonly Precision[] = ['ns', 'us', 'ms', 's']

/** One line of line protocol, its escapes undone. */
export interface LineProtocolPoint {
  /** 1-based number of the line in the body where the point starts. */
  line: number
  measurement: string
  /**
   * Undefined when the line has no tags. Shared by every line of the body whose tags are written
   * alike, whatever its measurement: never modify it. So a series' points can share what is made of
   * it (their metadata object) and that can be told apart by reference.
   */
  tags: Readonly<Record<string, string>> | undefined
  fields: Record<string, FieldValue>
  /** Epoch milliseconds (sub-millisecond digits truncated); undefined when the line has none. */
  timeMs: number | undefined
}

export type LineProtocolParse =
  | { ok: true; points: LineProtocolPoint[] }
  | { ok: false; line: number; message: string }

export interface LineProtocolOptions {
  /**
   * Names each field `<measurement>.<field>`, as a JSON point's nested object `{"<measurement>":
   * {…}}` is flattened, so that measurements of one device at one time never share a field (the
   * mapping of docs/telemetry-contract.md). Off: fields keep the names sent.
   */
  qualifyFields?: boolean
}

const TAB = 9
const NEWLINE = 10
const CR = 13
const SPACE = 32
const QUOTE = 34
const HASH = 35
const COMMA = 44
const MINUS = 45
const DOT = 46
const ZERO = 48
const NINE = 57
const EQUALS = 61
const BACKSLASH = 92
const LOWER_I = 105
const LOWER_U = 117

const MAX_INT64 = '9223372036854775807'
const MIN_INT64 = '9223372036854775808'
const MAX_UINT64 = '18446744073709551615'
/** Digits dropped from a timestamp to reach milliseconds, per precision; `s` multiplies instead. */
const DROPPED_DIGITS: Record<Precision, number> = { ns: 6, us: 3, ms: 0, s: 0 }
const BOOLEANS: Record<string, boolean> = {
  t: true,
  T: true,
  true: true,
  True: true,
  TRUE: true,
  f: false,
  F: false,
  false: false,
  False: false,
  FALSE: false,
}
/**
 * Up to this many significant digits, `digits / 10^k` is the exact double `Number()` gives (both
 * operands are exact doubles and one IEEE division rounds correctly: Clinger's fast path).
 */
const EXACT_DIGITS = 15
const POWERS_OF_TEN = Array.from({ length: EXACT_DIGITS + 1 }, (_, k) => 10 ** k)

class LineProtocolSyntaxError extends Error {}

/**
 * InfluxDB line protocol (`measurement[,tag=value…] field=value[,field=value…] [timestamp]`), with
 * its escapes: `\,` and `\ ` in measurements, `\,` `\=` `\ ` in tag keys, tag values and field keys,
 * `\"` and `\\` in string values (which may span lines); any other backslash is kept as it is.
 * Integers (`1i`) and unsigned integers (`1u`) become numbers. Blank lines and `#` comments are
 * skipped. Stops at the first bad line and names it.
 *
 * One pass by character code: since lines repeat their series and fields, what a line shares with
 * the one before (measurement and tags object, field names) is reused rather than built again, and
 * a series met earlier in the body is looked up rather than read again.
 */
export function parseLineProtocol(
  text: string,
  precision: Precision = 'ns',
  options: LineProtocolOptions = {},
): LineProtocolParse {
  const scanner = new Scanner(text, precision, options.qualifyFields === true)
  const points: LineProtocolPoint[] = []
  try {
    for (let point = scanner.next(); point !== undefined; point = scanner.next()) points.push(point)
  } catch (error) {
    if (!(error instanceof LineProtocolSyntaxError)) throw error
    return { ok: false, line: scanner.lineStartNumber, message: scanner.describe(error.message) }
  }
  return { ok: true, points }
}

/** What a series (a measurement and its tags, as written) was read as. */
interface Series {
  measurement: string
  tags: Readonly<Record<string, string>> | undefined
  keys: FieldKeys
}

/** The field keys met after a measurement, by their place in the line: as written (with `=`) and as named. */
interface FieldKeys {
  written: string[]
  /** Unescaped, as error messages name them. */
  keys: string[]
  names: string[]
}

class Scanner {
  private i = 0
  private line = 1
  private lineStart = 0
  lineStartNumber = 1
  /** The last series parsed: its text up to the space before the fields, and what it gave. */
  private seriesText = ''
  private measurement = ''
  private tags: Readonly<Record<string, string>> | undefined
  private keys: FieldKeys = { written: [], keys: [], names: [] }
  /** Field keys per measurement (lines of several measurements often alternate). */
  private readonly keysByMeasurement = new Map<string, FieldKeys>()
  /** Each series read so far, by its text; and each tags object, by the text of its tags. */
  private readonly seriesByText = new Map<string, Series>()
  private readonly tagsByText = new Map<string, Readonly<Record<string, string>>>()

  constructor(
    private readonly text: string,
    private readonly precision: Precision,
    private readonly qualifyFields: boolean,
  ) {}

  /** The next point, or undefined at the end of the text. */
  next(): LineProtocolPoint | undefined {
    const { text } = this
    while (this.i < text.length) {
      const c = text.charCodeAt(this.i)
      if (c === NEWLINE) {
        this.i++
        this.line++
      } else if (c === SPACE || c === TAB || c === CR) {
        this.i++
      } else if (c === HASH) {
        const end = text.indexOf('\n', this.i)
        this.i = end === -1 ? text.length : end
      } else {
        return this.point()
      }
    }
    return undefined
  }

  /** The reason, with the line number and the start of the line the point began on. */
  describe(reason: string): string {
    const end = this.text.indexOf('\n', this.lineStart)
    const line = this.text.slice(this.lineStart, end === -1 ? this.text.length : end)
    const shown = line.length > 120 ? `${line.slice(0, 120)}…` : line
    return `line ${this.lineStartNumber}: ${reason}: ${JSON.stringify(shown)}`
  }

  private point(): LineProtocolPoint {
    const { text } = this
    const start = this.i
    this.lineStart = start
    this.lineStartNumber = this.line
    // The series as the line before wrote it: the same measurement and tags. It ends before an
    // unescaped space, so the text matched here ends there too (a backslash never ends it).
    const previous = this.seriesText
    const after = start + previous.length
    if (previous.length === 0 || !isBlank(text.charCodeAt(after)) || !text.startsWith(previous, start))
      this.seriesAt(start)
    else this.i = after
    const { measurement, tags } = this
    this.spaces('fields are missing')
    const fields: Record<string, FieldValue> = {}
    const { written, keys, names } = this.keys
    for (let k = 0; ; k++) {
      // A key written as in the line before (with its `=`, which no backslash precedes) is the same name.
      const known = written[k]
      if (known !== undefined && text.startsWith(known, this.i)) {
        this.i += known.length
      } else {
        const keyStart = this.i
        const key = this.name(true, 'field key')
        this.expect(EQUALS, `field key "${key}" is not followed by "="`)
        written[k] = text.slice(keyStart, this.i)
        keys[k] = key
        names[k] = this.qualifyFields ? `${measurement}.${key}` : key
      }
      fields[names[k] as string] = this.fieldValue(keys[k] as string)
      if (text.charCodeAt(this.i) !== COMMA) break
      this.i++
    }
    const timeMs = this.timestamp()
    return { line: this.lineStartNumber, measurement, tags, fields, timeMs }
  }

  /** The series at `start`: one met earlier in the body, or read. */
  private seriesAt(start: number) {
    const { text } = this
    const end = seriesEnd(text, start)
    if (isBlank(text.charCodeAt(end))) {
      const seriesText = text.slice(start, end)
      const known = this.seriesByText.get(seriesText)
      if (known !== undefined) {
        this.seriesText = seriesText
        this.measurement = known.measurement
        this.tags = known.tags
        this.keys = known.keys
        this.i = end
        return
      }
    }
    this.series()
  }

  /** Reads a measurement and its tags, remembered for the lines after. */
  private series() {
    const { text } = this
    const start = this.i
    const measurement = this.name(false, 'measurement')
    const tagsStart = this.i
    let tags: Record<string, string> | undefined
    while (text.charCodeAt(this.i) === COMMA) {
      this.i++
      const key = this.name(true, 'tag key')
      this.expect(EQUALS, `tag key "${key}" is not followed by "="`)
      const value = this.name(true, 'tag value')
      if (text.charCodeAt(this.i) === EQUALS) this.fail(`tag value "${value}" holds an unescaped "="`)
      tags ??= {}
      if (Object.hasOwn(tags, key)) this.fail(`tag "${key}" appears twice`)
      tags[key] = value
    }
    this.seriesText = text.slice(start, this.i)
    if (measurement !== this.measurement) {
      let keys = this.keysByMeasurement.get(measurement)
      if (!keys) {
        keys = { written: [], keys: [], names: [] }
        this.keysByMeasurement.set(measurement, keys)
      }
      this.keys = keys
    }
    this.measurement = measurement
    this.tags = tags === undefined ? undefined : this.sharedTags(text.slice(tagsStart, this.i), tags)
    this.seriesByText.set(this.seriesText, { measurement, tags: this.tags, keys: this.keys })
  }

  /** The tags object of the first series whose tags were written as `tagsText`; `tags` for the first. */
  private sharedTags(tagsText: string, tags: Record<string, string>): Readonly<Record<string, string>> {
    const known = this.tagsByText.get(tagsText)
    if (known !== undefined) return known
    this.tagsByText.set(tagsText, tags)
    return tags
  }

  /**
   * A measurement, tag key, tag value or field key: up to an unescaped comma or space (or `=` for
   * `keyLike` names). The copy without escapes is only made when there is a backslash.
   */
  private name(keyLike: boolean, what: string): string {
    const { text } = this
    const start = this.i
    let escaped = false
    let c = 0
    for (; this.i < text.length; this.i++) {
      c = text.charCodeAt(this.i)
      if (c === BACKSLASH) {
        const after = text.charCodeAt(this.i + 1)
        if (after === COMMA || after === SPACE || (keyLike && after === EQUALS)) {
          escaped = true
          this.i++
        }
        continue
      }
      if (c === COMMA || c === SPACE || c === NEWLINE || c === TAB || c === CR || (keyLike && c === EQUALS))
        break
    }
    if (this.i === start) this.fail(`${what} is empty`)
    if (c === NEWLINE || c === CR || this.i === text.length) {
      if (what === 'measurement' || what === 'tag value') this.fail('fields are missing')
      this.fail(`${what} "${text.slice(start, this.i)}" is not followed by "="`)
    }
    const raw = text.slice(start, this.i)
    const name = escaped ? unescapeName(raw, keyLike) : raw
    if (name === '__proto__') this.fail(`"__proto__" is not allowed as a ${what}`)
    return name
  }

  private fieldValue(key: string): FieldValue {
    const { text } = this
    const start = this.i
    let c = text.charCodeAt(start)
    if (c === QUOTE) return this.stringValue(key)
    // The usual number, `[-]digits[.digits]` with an optional `i` or `u`, read without a substring.
    let j = start
    const negative = c === MINUS
    if (negative) c = text.charCodeAt(++j)
    let digits = 0
    let mantissa = 0
    while (c >= ZERO && c <= NINE) {
      mantissa = mantissa * 10 + (c - ZERO)
      digits++
      c = text.charCodeAt(++j)
    }
    if (c === DOT) {
      const point = j
      c = text.charCodeAt(++j)
      while (c >= ZERO && c <= NINE) {
        mantissa = mantissa * 10 + (c - ZERO)
        digits++
        c = text.charCodeAt(++j)
      }
      if (digits > 0 && digits <= EXACT_DIGITS && endsValue(c)) {
        this.i = j
        const value = mantissa / (POWERS_OF_TEN[j - point - 1] as number)
        return negative ? -value : value
      }
    } else if (digits > 0 && digits <= EXACT_DIGITS) {
      if (endsValue(c)) {
        this.i = j
        return negative ? -mantissa : mantissa
      }
      if ((c === LOWER_I || (c === LOWER_U && !negative)) && endsValue(text.charCodeAt(j + 1))) {
        this.i = j + 1
        return negative ? -mantissa : mantissa
      }
    }
    return this.otherValue(key)
  }

  /** Booleans, exponents, long or malformed numbers: from the token. */
  private otherValue(key: string): FieldValue {
    const { text } = this
    const start = this.i
    while (this.i < text.length && !endsValue(text.charCodeAt(this.i))) this.i++
    const token = text.slice(start, this.i)
    if (token.length === 0) this.fail(`field "${key}" has no value`)
    const last = token.charCodeAt(token.length - 1)
    if (last === LOWER_I || last === LOWER_U) {
      const digits = token.slice(0, -1)
      const unsigned = last === LOWER_U
      if (!isInteger(digits, unsigned))
        this.fail(`field "${key}" has an invalid ${unsigned ? 'unsigned ' : ''}integer ${token}`)
      return Number(digits)
    }
    const boolean = BOOLEANS[token]
    if (boolean !== undefined) return boolean
    if (!isFloat(token)) this.fail(`field "${key}" has an invalid value ${token}`)
    const value = Number(token)
    if (!Number.isFinite(value)) this.fail(`field "${key}" is out of the range of a float: ${token}`)
    return value
  }

  /** A double-quoted string: `\"` and `\\` are escapes, newlines are part of the value. */
  private stringValue(key: string): string {
    const { text } = this
    const start = ++this.i
    let escaped = false
    for (; this.i < text.length; this.i++) {
      const c = text.charCodeAt(this.i)
      if (c === QUOTE) break
      if (c === NEWLINE) this.line++
      else if (c === BACKSLASH) {
        const after = text.charCodeAt(this.i + 1)
        if (after === QUOTE || after === BACKSLASH) {
          escaped = true
          this.i++
        }
      }
    }
    if (this.i >= text.length) this.fail(`the string value of field "${key}" has no closing quote`)
    const raw = text.slice(start, this.i)
    this.i++
    return escaped ? unescapeString(raw) : raw
  }

  private timestamp(): number | undefined {
    const { text } = this
    while (isBlank(text.charCodeAt(this.i))) this.i++
    if (this.atLineEnd()) return undefined
    const start = this.i
    // The usual timestamp: digits only, within 64 bits, kept to the millisecond without a substring.
    let j = start
    let c = text.charCodeAt(j)
    while (c >= ZERO && c <= NINE) c = text.charCodeAt(++j)
    const length = j - start
    const kept = length - DROPPED_DIGITS[this.precision]
    const within64Bits =
      length < MAX_INT64.length || (length === MAX_INT64.length && notAbove(text, start, MAX_INT64))
    if (
      length > 0 &&
      kept <= EXACT_DIGITS &&
      within64Bits &&
      (Number.isNaN(c) || c === NEWLINE || c === CR)
    ) {
      let ms = 0
      for (let k = start; k < start + kept; k++) ms = ms * 10 + (text.charCodeAt(k) - ZERO)
      this.i = j
      return this.precision === 's' ? ms * 1000 : ms
    }
    while (this.i < text.length && !isBlank(text.charCodeAt(this.i)) && !this.atLineEnd()) this.i++
    const token = text.slice(start, this.i)
    while (isBlank(text.charCodeAt(this.i))) this.i++
    if (!this.atLineEnd()) this.fail('there is more after the timestamp')
    if (!isInteger(token, false)) this.fail(`the timestamp ${token} is not an integer`)
    return toMillis(token, this.precision)
  }

  private atLineEnd(): boolean {
    const c = this.text.charCodeAt(this.i)
    return this.i >= this.text.length || c === NEWLINE || c === CR
  }

  private spaces(missing: string) {
    const { text } = this
    if (!isBlank(text.charCodeAt(this.i))) this.fail(missing)
    while (isBlank(text.charCodeAt(this.i))) this.i++
    if (this.atLineEnd()) this.fail(missing)
  }

  private expect(code: number, message: string) {
    if (this.text.charCodeAt(this.i) !== code) this.fail(message)
    this.i++
  }

  private fail(reason: string): never {
    throw new LineProtocolSyntaxError(reason)
  }
}

/** Whether the digits of `text` from `start`, as many as `limit` has, are at most `limit`'s. */
function notAbove(text: string, start: number, limit: string): boolean {
  for (let k = 0; k < limit.length; k++) {
    const difference = text.charCodeAt(start + k) - limit.charCodeAt(k)
    if (difference !== 0) return difference < 0
  }
  return true
}

const isBlank = (c: number) => c === SPACE || c === TAB

/**
 * Where the series starting at `start` ends, as Scanner.name reads it: at the first space that no
 * backslash precedes (a backslash never escapes another), or a tab or line end; the text's length
 * when none.
 */
function seriesEnd(text: string, start: number): number {
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if ((c === SPACE && text.charCodeAt(i - 1) !== BACKSLASH) || c === TAB || c === NEWLINE || c === CR)
      return i
  }
  return text.length
}
/** What may follow a field value: the next field, the timestamp, the end of the line or of the text (NaN). */
const endsValue = (c: number) =>
  c === COMMA || c === SPACE || c === NEWLINE || c === TAB || c === CR || Number.isNaN(c)

function unescapeName(raw: string, keyLike: boolean): string {
  let out = ''
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i)
    if (c === BACKSLASH) {
      const after = raw.charCodeAt(i + 1)
      if (after === COMMA || after === SPACE || (keyLike && after === EQUALS)) {
        out += raw[i + 1]
        i++
        continue
      }
    }
    out += raw[i]
  }
  return out
}

function unescapeString(raw: string): string {
  let out = ''
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i)
    if (c === BACKSLASH) {
      const after = raw.charCodeAt(i + 1)
      if (after === QUOTE || after === BACKSLASH) {
        out += raw[i + 1]
        i++
        continue
      }
    }
    out += raw[i]
  }
  return out
}

/** Digits with an optional minus (none when unsigned), within 64 bits. */
function isInteger(token: string, unsigned: boolean): boolean {
  const negative = token.charCodeAt(0) === MINUS
  if (negative && unsigned) return false
  const from = negative ? 1 : 0
  const length = token.length - from
  if (length === 0) return false
  for (let i = from; i < token.length; i++) {
    const c = token.charCodeAt(i)
    if (c < ZERO || c > NINE) return false
  }
  if (length < 19) return true
  // Same length: compare as strings, digit by digit (after the leading zeros a client never sends).
  const limit = unsigned ? MAX_UINT64 : negative ? MIN_INT64 : MAX_INT64
  const digits = from === 0 ? token : token.slice(from)
  return digits.length < limit.length || (digits.length === limit.length && digits <= limit)
}

/** `[-]digits[.digits][e[+-]digits]`, with a digit before or after the point. */
function isFloat(token: string): boolean {
  let i = token.charCodeAt(0) === MINUS || token.charCodeAt(0) === 43 /* + */ ? 1 : 0
  let digits = 0
  while (isDigit(token.charCodeAt(i))) {
    i++
    digits++
  }
  if (token.charCodeAt(i) === DOT) {
    i++
    while (isDigit(token.charCodeAt(i))) {
      i++
      digits++
    }
  }
  if (digits === 0) return false
  const e = token.charCodeAt(i)
  if (e === 101 /* e */ || e === 69 /* E */) {
    i++
    if (token.charCodeAt(i) === MINUS || token.charCodeAt(i) === 43) i++
    if (!isDigit(token.charCodeAt(i))) return false
    while (isDigit(token.charCodeAt(i))) i++
  }
  return i === token.length
}

const isDigit = (c: number) => c >= ZERO && c <= NINE

/** An integer timestamp in `precision` to epoch ms, sub-millisecond digits truncated towards the past. */
function toMillis(token: string, precision: Precision): number {
  if (precision === 's') return Number(token) * 1000
  const dropped = DROPPED_DIGITS[precision]
  if (dropped === 0) return Number(token)
  const negative = token.charCodeAt(0) === MINUS
  const digits = negative ? token.slice(1) : token
  if (digits.length <= dropped) return negative && Number(digits) !== 0 ? -1 : 0
  const ms = Number(digits.slice(0, digits.length - dropped))
  if (!negative) return ms
  const remainder = Number(digits.slice(digits.length - dropped))
  return remainder === 0 ? -ms : -ms - 1
}
