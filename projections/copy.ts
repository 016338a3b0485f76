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
