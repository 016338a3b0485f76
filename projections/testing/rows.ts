import type pg from 'pg'

/**
 * For tests: every row of every read model (`rm_*` schemas, not a rebuild's `__next`), as JSON text in
 * a stable order, by `schema.table`. `skipEvents`: event types left out of the event log's rows.
 */
export async function readModelRows(pool: pg.Pool, skipEvents: readonly string[]): Promise<Record<string, string[]>> {
  const { rows: tables } = await pool.query<{ s: string; t: string }>(
    `SELECT table_schema AS s, table_name AS t FROM information_schema.tables
      WHERE table_schema LIKE 'rm\\_%' AND table_schema NOT LIKE '%\\_\\_next' AND table_type = 'BASE TABLE' ORDER BY 1, 2`,
  )
  const out: Record<string, string[]> = {}
  for (const { s, t } of tables) {
    const where = s === 'rm_eventlog' && t === 'events' ? 'WHERE NOT (x.type = ANY($1::text[]))' : 'WHERE $1::text[] IS NOT NULL'
    const { rows } = await pool.query<{ j: string }>(`SELECT row_to_json(x)::text AS j FROM "${s}"."${t}" x ${where} ORDER BY 1`, [skipEvents])
    out[`${s}.${t}`] = rows.map((r) => r.j)
  }
  return out
}
