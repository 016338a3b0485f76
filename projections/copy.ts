import { once } from 'node:events'
import type pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'

/**
 * Bulk writes with `COPY ... FROM STDIN` (text format): Postgres reads rows as tab-separated lines,
 * without parsing, planning and executing an INSERT or unpacking array parameters. Used by read
 * models whose batch path only appends rows (the event log: one row per event, the largest table of
 * a replay).
 */

/**
 * One value as a field of COPY's text format: `\N` for null and undefined; `t`/`f` for booleans;
 * numbers as they print; strings with backslash, newline, carriage return and tab escaped; objects as
 * JSON (escaped the same way). A string with a NUL character cannot be stored in Postgres text.
 */
export function copyField(v: unknown): string {
  if (v === null || v === undefined) return '\\N'
  if (typeof v === 'string') return escapeText(v)
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new TypeError(`cannot COPY the number ${v}`)
    return String(v)
  }
  if (typeof v === 'boolean') return v ? 't' : 'f'
  if (typeof v === 'bigint') return v.toString()
  if (v instanceof Date) return v.toISOString()
  return escapeText(JSON.stringify(v))
}

const SPECIAL = /[\\\n\r\t\0]/

/** A string as a field of COPY's text format (see {@link copyField}). */
export function escapeText(s: string): string {
  if (!SPECIAL.test(s)) return s
  if (s.includes('\0')) throw new TypeError('a value with a NUL character cannot be sent to Postgres')
  return s.replaceAll('\\', '\\\\').replaceAll('\n', '\\n').replaceAll('\r', '\\r').replaceAll('\t', '\\t')
}

/**
 * {@link escapeText} of the output of `JSON.stringify`, which never holds a newline, carriage return,
 * tab or NUL as such (JSON escapes them): only its backslashes are doubled.
 */
export function escapeJson(json: string): string {
  return json.includes('\\') ? json.replaceAll('\\', '\\\\') : json
}

/** One row's values as a line of COPY's text format: each made a field by {@link copyField}, tab-separated. */
export function copyLine(values: readonly unknown[]): string {
  let line = values.length > 0 ? copyField(values[0]) : ''
  for (let i = 1; i < values.length; i++) line += `\t${copyField(values[i])}`
  return `${line}\n`
}

/**
 * Writes `lines` (each a row ending in a newline, see {@link copyLine}) into `table (columns)` with one
 * COPY on `tx`, inside its transaction; resolves when Postgres has taken them all, rejects with its
 * error (the transaction is then aborted, as after a failed INSERT).
 */
export async function copyRows(tx: pg.PoolClient, table: string, columns: readonly string[], lines: Iterable<string>): Promise<void> {
  await copyBytes(tx, table, columns, encodeLines(lines))
}

/** How many bytes are handed to the socket at once (about). */
const PIECE = 1 << 20

/**
 * `lines` encoded straight into pieces of about PIECE bytes, each handed on as it is (and a new one
 * taken after): no long string built of many lines to flatten and encode again (a replay sends about
 * 500 MB of them).
 */
function* encodeLines(lines: Iterable<string>): Generator<Buffer> {
  let piece = Buffer.allocUnsafe(PIECE)
  let at = 0
  for (const line of lines) {
    // A UTF-16 code unit is at most 3 bytes of UTF-8.
    const most = line.length * 3
    if (at + most > piece.length) {
      if (at > 0) yield piece.subarray(0, at)
      piece = Buffer.allocUnsafe(Math.max(PIECE, most))
      at = 0
    }
    at += piece.write(line, at)
  }
  if (at > 0) yield piece.subarray(0, at)
}

/**
 * {@link copyRows} of rows already encoded: `pieces` are whole lines of COPY's text format in UTF-8,
 * one or many lines each.
 */
export async function copyBytes(tx: pg.PoolClient, table: string, columns: readonly string[], pieces: Iterable<Buffer>): Promise<void> {
  const stream = tx.query(copyFrom(`COPY ${table} (${columns.join(', ')}) FROM STDIN`))
  const failed = once(stream, 'error').then(([err]) => {
    throw err
  })
  // Settled either way below: a failure before the end surfaces through `write`/`finish` as well.
  failed.catch(() => {})
  for (const piece of pieces) if (!stream.write(piece)) await Promise.race([once(stream, 'drain'), failed])
  stream.end()
  await Promise.race([once(stream, 'finish'), failed])
}

/**
 * `COPY ... FROM STDIN WITH (FORMAT binary)`: rows as typed fields (integers, booleans and
 * timestamps as their binary values, text as its UTF-8 bytes, each field after its length), which
 * Postgres stores without parsing text: no escaping here, no number, date or escape parsing there
 * (a million event rows: about a quarter less of the backend's CPU than the text format). Rows are
 * encoded straight into pieces of about PIECE bytes.
 */
export class BinaryRows {
  /** Whole pieces, and the one being filled up to `#at`. */
  #full: Buffer[] = []
  #piece = Buffer.allocUnsafe(PIECE)
  #at = 0
  /** How many rows were written since the last {@link take}. */
  rows = 0

  /** Starts a row of `fields` fields, with room for `most` more bytes (an upper bound of its fields' encoded size). */
  row(fields: number, most: number): void {
    const need = 2 + fields * 4 + most
    if (this.#at + need > this.#piece.length) {
      if (this.#at > 0) this.#full.push(this.#piece.subarray(0, this.#at))
      this.#piece = Buffer.allocUnsafe(Math.max(PIECE, need))
      this.#at = 0
    }
    const p = this.#piece
    const at = this.#at
    p[at] = fields >>> 8
    p[at + 1] = fields & 0xff
    this.#at = at + 2
    this.rows++
  }

  // The fields are written byte by byte, without Buffer's checked writers: `row` made room for them.

  /** A field's length, or -1 for null, at `at`. */
  #length(at: number, n: number): void {
    const p = this.#piece
    p[at] = n >>> 24
    p[at + 1] = (n >>> 16) & 0xff
    p[at + 2] = (n >>> 8) & 0xff
    p[at + 3] = n & 0xff
  }

  null(): void {
    this.#length(this.#at, -1)
    this.#at += 4
  }

  /** text (and json: its binary form is its text) as UTF-8; room for `s.length * 3` bytes must have been asked for. */
  text(s: string): void {
    const at = this.#at
    const n = (this.#piece as Utf8Writable).utf8Write(s, at + 4)
    this.#length(at, n)
    this.#at = at + 4 + n
  }

  bool(b: boolean): void {
    const at = this.#at
    this.#length(at, 1)
    this.#piece[at + 4] = b ? 1 : 0
    this.#at = at + 5
  }

  int2(n: number): void {
    if (!(n >= -0x8000 && n <= 0x7fff)) throw new RangeError(`${n} is not a smallint`)
    const at = this.#at
    const p = this.#piece
    this.#length(at, 2)
    p[at + 4] = (n >>> 8) & 0xff
    p[at + 5] = n & 0xff
    this.#at = at + 6
  }

  /** An integer column's value, a 32-bit signed integer. */
  int4(n: number): void {
    if (!(n >= -0x8000_0000 && n <= 0x7fff_ffff && Number.isInteger(n))) throw new RangeError(`${n} is not an integer`)
    const at = this.#at
    this.#length(at, 4)
    this.#length(at + 4, n)
    this.#at = at + 8
  }

  /** A bigint column's value, a safe integer. */
  int8(n: number): void {
    if (!Number.isSafeInteger(n)) throw new RangeError(`${n} is not a safe integer`)
    const hi = Math.floor(n / 0x1_0000_0000)
    const lo = n - hi * 0x1_0000_0000
    const at = this.#at
    this.#length(at, 8)
    this.#length(at + 4, hi)
    this.#length(at + 8, lo)
    this.#at = at + 12
  }

  /** A timestamptz: microseconds since 2000-01-01 00:00:00 UTC (see {@link timestampMicros}). */
  timestamp(micros: number): void {
    this.int8(micros)
  }

  /** The rows written so far (whole, as the COPY's pieces between its header and its trailer); the writer starts afresh. */
  take(): Buffer[] {
    const pieces = this.#full
    if (this.#at > 0) {
      pieces.push(this.#piece.subarray(0, this.#at))
      this.#piece = Buffer.allocUnsafe(PIECE)
      this.#at = 0
    }
    this.#full = []
    this.rows = 0
    return pieces
  }
}

/**
 * `Buffer.prototype.utf8Write`: what `buf.write(s, offset)` calls after parsing its arguments (in
 * Node since its first versions, not in its types); about half the cost of `write` for short strings.
 */
type Utf8Writable = Buffer & { utf8Write(s: string, offset: number): number }

/** The start of binary COPY data: signature, flags, header extension length. */
const BINARY_HEADER = Buffer.from([0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0])
/** Its end: a field count of -1. */
const BINARY_TRAILER = Buffer.from([0xff, 0xff])

/** Writes rows that {@link BinaryRows} encoded (`pieces`, from its `take`) into `table (columns)` with one binary COPY on `tx`. */
export async function copyBinary(tx: pg.PoolClient, table: string, columns: readonly string[], pieces: readonly Buffer[]): Promise<void> {
  const stream = tx.query(copyFrom(`COPY ${table} (${columns.join(', ')}) FROM STDIN WITH (FORMAT binary)`))
  const failed = once(stream, 'error').then(([err]) => {
    throw err
  })
  failed.catch(() => {})
  for (const piece of [BINARY_HEADER, ...pieces, BINARY_TRAILER]) if (!stream.write(piece)) await Promise.race([once(stream, 'drain'), failed])
  stream.end()
  await Promise.race([once(stream, 'finish'), failed])
}

/** Milliseconds from the Unix epoch to Postgres' (2000-01-01 00:00:00 UTC). */
const PG_EPOCH_MS = 946_684_800_000
const ISO_TIME = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?:Z|([+-])(\d\d):(\d\d))$/
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

/**
 * An ISO 8601 time as a timestamptz's binary value (microseconds since 2000-01-01 UTC), exactly what
 * Postgres reads from the same text: `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|±HH:MM)` with every field in its
 * range. Undefined for anything else (the caller lets Postgres read the text instead).
 */
export function timestampMicros(s: string): number | undefined {
  if (s.length === 24) {
    const ms = isoMillis(s)
    if (ms !== undefined) return (ms - PG_EPOCH_MS) * 1000
  }
  const m = ISO_TIME.exec(s)
  if (!m) return undefined
  const year = Number(m[1])
  if (year < 1) return undefined
  const month = Number(m[2])
  const day = Number(m[3])
  const hour = Number(m[4])
  const minute = Number(m[5])
  const second = Number(m[6])
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  if (month < 1 || month > 12 || day < 1 || day > (month === 2 && leap ? 29 : DAYS[month - 1]!) || hour > 23 || minute > 59 || second > 59) return undefined
  let offset = 0
  if (m[8] !== undefined) {
    const oh = Number(m[9])
    const om = Number(m[10])
    if (oh > 15 || om > 59) return undefined
    offset = (m[8] === '-' ? -1 : 1) * (oh * 60 + om)
  }
  const fraction = m[7] === undefined ? 0 : Number(m[7].padEnd(6, '0'))
  // Date.UTC takes years 0-99 as 1900-1999.
  const date = new Date(0)
  date.setUTCFullYear(year, month - 1, day)
  date.setUTCHours(hour, minute - offset, second, 0)
  const micros = (date.getTime() - PG_EPOCH_MS) * 1000 + fraction
  return Number.isSafeInteger(micros) ? micros : undefined
}

/** The digit at `s[i]`, or NaN. */
function digit(s: string, i: number): number {
  const d = s.charCodeAt(i) - 0x30
  return d >= 0 && d <= 9 ? d : Number.NaN
}

/**
 * `Date.toISOString()`'s form (`YYYY-MM-DDTHH:MM:SS.sssZ`, 24 characters, a year from 1000), the
 * form of nearly every event's time, read without a regular expression or a Date: its milliseconds
 * since the Unix epoch, or undefined when `s` is not of that form or a field is out of range.
 */
function isoMillis(s: string): number | undefined {
  if (s.charCodeAt(4) !== 0x2d || s.charCodeAt(7) !== 0x2d || s.charCodeAt(10) !== 0x54 || s.charCodeAt(13) !== 0x3a) return undefined
  if (s.charCodeAt(16) !== 0x3a || s.charCodeAt(19) !== 0x2e || s.charCodeAt(23) !== 0x5a) return undefined
  const year = digit(s, 0) * 1000 + digit(s, 1) * 100 + digit(s, 2) * 10 + digit(s, 3)
  const month = digit(s, 5) * 10 + digit(s, 6)
  const day = digit(s, 8) * 10 + digit(s, 9)
  const hour = digit(s, 11) * 10 + digit(s, 12)
  const minute = digit(s, 14) * 10 + digit(s, 15)
  const second = digit(s, 17) * 10 + digit(s, 18)
  const ms = digit(s, 20) * 100 + digit(s, 21) * 10 + digit(s, 22)
  // NaN fails every comparison.
  if (!(year >= 1000 && month >= 1 && month <= 12 && day >= 1 && hour <= 23 && minute <= 59 && second <= 59 && ms >= 0)) return undefined
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
  if (day > (month === 2 && leap ? 29 : DAYS[month - 1]!)) return undefined
  return Date.UTC(year, month - 1, day, hour, minute, second, ms)
}
