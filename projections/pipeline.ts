import type pg from 'pg'
import type { RecordedEvent } from '../events/index.js'
import type { Projection } from './projection.js'

/**
 * Replaying a large log one statement per round trip spends most of its time waiting on the network:
 * a projection's `apply` sends one or two small statements per event. {@link pipelinedApply} runs the
 * very same `apply` against a stand-in client that keeps each statement, with its parameters inlined
 * as literals, and sends them to Postgres many at a time in one simple query: the same statements in
 * the same order in the same transaction, so the same effect, at a fraction of the round trips.
 * A statement that reads (SELECT, WITH, RETURNING, ...) first sends the writes kept so far and then
 * runs as usual, so an `apply` that reads its own tables sees its earlier writes; a write answers no
 * rows and a rowCount of 0 (no `apply` of Wharf's looks at those). When a batch fails, the replay
 * applies it again event by event with `apply` to find the event at fault.
 */

/** How much SQL text is sent in one round trip, bytes (about). */
const MAX_TEXT = 1 << 20

/** The answer the stand-in gives every statement: nothing read back. */
const EMPTY = Object.freeze({ rows: [], rowCount: 0, command: '', oid: 0, fields: [] })

/** A statement whose answer its caller may read: it runs at once, after the ones kept before it. */
const READS = /^\s*(SELECT|WITH|VALUES|TABLE|SHOW)\b|\bRETURNING\b/i

/** Keeps writes instead of running them; a read sends what was kept, then runs. */
class StatementBuffer {
  readonly statements: string[] = []
  size = 0
  constructor(readonly tx: pg.PoolClient) {}

  async query(textOrConfig: string | { text: string; values?: unknown[] }, values?: unknown[]): Promise<unknown> {
    const text = typeof textOrConfig === 'string' ? textOrConfig : textOrConfig.text
    const params = typeof textOrConfig === 'string' ? values : textOrConfig.values
    if (READS.test(text)) {
      await this.flush()
      return this.tx.query(text, params)
    }
    const sql = inline(text, params)
    this.statements.push(sql)
    this.size += sql.length
    return EMPTY
  }

  async flush(): Promise<void> {
    if (this.statements.length === 0) return
    const text = this.statements.join(';\n')
    this.statements.length = 0
    this.size = 0
    await this.tx.query(text)
  }
}

/** Applies `events` with `p.apply`, sending its writes in large multi-statement queries on `tx`. */
export async function pipelinedApply(p: Projection, events: readonly RecordedEvent[], tx: pg.PoolClient): Promise<void> {
  const buf = new StatementBuffer(tx)
  for (const e of events) {
    await p.apply(e, buf as unknown as pg.PoolClient)
    if (buf.size >= MAX_TEXT) await buf.flush()
  }
  await buf.flush()
}

/**
 * `sql` with `$n` replaced by the n-th value as a quoted literal, outside quoted strings and
 * identifiers. A quoted literal is of unknown type until its context decides, as a parameter is.
 */
export function inline(sql: string, values: readonly unknown[] | undefined): string {
  if (!values || values.length === 0) return sql
  let out = ''
  let i = 0
  while (i < sql.length) {
    const c = sql[i]!
    if (c === "'" || c === '"') {
      const end = closing(sql, i, c)
      out += sql.slice(i, end)
      i = end
      continue
    }
    if (c === '$') {
      const m = /^\$(\d+)/.exec(sql.slice(i, i + 8))
      if (m) {
        const n = Number(m[1])
        if (n < 1 || n > values.length) throw new RangeError(`no value for $${n} (${values.length} given)`)
        out += literal(values[n - 1])
        i += m[0].length
        continue
      }
    }
    out += c
    i++
  }
  return out
}

/** The index after the quote that closes the one at `start` (a doubled quote is part of the text). */
function closing(sql: string, start: number, q: string): number {
  let i = start + 1
  while (i < sql.length) {
    if (sql[i] === q) {
      if (sql[i + 1] === q) {
        i += 2
        continue
      }
      return i + 1
    }
    i++
  }
  return sql.length
}

/** A value as node-postgres would send it, as an SQL string literal (standard_conforming_strings on). */
export function literal(v: unknown): string {
  if (v === null || v === undefined) return 'NULL'
  return quote(text(v))
}

function quote(s: string): string {
  if (s.includes('\0')) throw new TypeError('a value with a NUL character cannot be sent to Postgres')
  return `'${s.replaceAll("'", "''")}'`
}

/** The text node-postgres sends for a value (its prepareValue): arrays as array literals, dates in ISO form, objects as JSON. */
function text(v: unknown): string {
  if (Array.isArray(v)) return arrayText(v)
  if (v instanceof Date) return v.toISOString()
  if (Buffer.isBuffer(v)) return `\\x${v.toString('hex')}`
  if (typeof v === 'object') return JSON.stringify(v)
  return String(v)
}

function arrayText(xs: readonly unknown[]): string {
  const parts = xs.map((x) => {
    if (x === null || x === undefined) return 'NULL'
    if (Array.isArray(x)) return arrayText(x)
    return `"${text(x).replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`
  })
  return `{${parts.join(',')}}`
}
