import pg from 'pg'

/**
 * The statements of a {@link Projection.writesOnly} projection's batch, kept instead of sent: `client`
 * is what `apply`/`applyBatch` get as their transaction; `sql()` is every statement they made, in
 * order, each with its parameters written in as literals (pg's own conversion of the values, then
 * `escapeLiteral`), to go in one simple query with what follows them (the checkpoint and COMMIT).
 */
export class DeferredStatements {
  readonly #statements: string[] = []

  /** A stand-in for the transaction's client: `query` keeps the statement and answers no rows. */
  readonly client = {
    query: async (text: string | { text: string; values?: unknown[] }, values?: unknown[]): Promise<pg.QueryResult> => {
      const t = typeof text === 'string' ? text : text.text
      this.#statements.push(inline(t, typeof text === 'string' ? (values ?? []) : (text.values ?? values ?? [])))
      return { rows: [], rowCount: 0, command: '', oid: 0, fields: [] }
    },
  } as unknown as pg.PoolClient

  /** The statements kept, `;`-separated (empty when none). */
  sql(): string {
    return this.#statements.map((s) => `${s};\n`).join('')
  }
}

/** `text` with each `$n` replaced by parameter n as a literal. */
export function inline(text: string, values: readonly unknown[]): string {
  return text.replace(/\$(\d+)/g, (_, n: string) => {
    const i = Number(n) - 1
    if (i < 0 || i >= values.length) throw new Error(`statement refers to $${n} but has ${values.length} parameters`)
    return literal(values[i])
  })
}

/** pg's conversion of a parameter to what it sends (text, a Buffer or null); not in its type declarations. */
const prepareValue = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils.prepareValue

function literal(value: unknown): string {
  const v = prepareValue(value)
  if (v === null || v === undefined) return 'NULL'
  if (Buffer.isBuffer(v)) return pg.escapeLiteral(`\\x${v.toString('hex')}`)
  return pg.escapeLiteral(String(v))
}
