/** How the CLI prints: tables for people, the API's JSON for scripts (`--json`). */

export function printJson(data: unknown): void {
  console.log(JSON.stringify(data, null, 2))
}

/** A plain table: a header row, then one row per item; columns as wide as their widest cell. */
export function table(rows: readonly Record<string, unknown>[], columns: readonly { key: string; title?: string }[]): string {
  const cell = (v: unknown) => (v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v))
  const header = columns.map((c) => (c.title ?? c.key).toUpperCase())
  const body = rows.map((r) => columns.map((c) => cell(r[c.key])))
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()
  return [line(header), ...body.map(line)].join('\n')
}

/** Prints `rows` as JSON with `--json`, else as a table, or `empty` when there is nothing. */
export function printList(rows: readonly Record<string, unknown>[], columns: readonly { key: string; title?: string }[], opts: { json?: boolean; empty: string }, raw: unknown = rows): void {
  if (opts.json) return printJson(raw)
  console.log(rows.length ? table(rows, columns) : opts.empty)
}
