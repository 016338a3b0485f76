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
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(header), ...body.map(line)].join('\n')
}

/** Prints `rows` as JSON with `--json`, else as a table, or `empty` when there is nothing. */
export function printList(
  rows: readonly Record<string, unknown>[],
  columns: readonly { key: string; title?: string }[],
  opts: { json?: boolean; empty: string },
  raw: unknown = rows,
): void {
  if (opts.json) printJson(raw)
  else console.log(rows.length ? table(rows, columns) : opts.empty)
}

/** `1536` -> `1.5 KiB`. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`
}

/**
 * Runs long work with a progress line on stderr: on a terminal `label... N s`, counting, then
 * `label... done (N s)`; elsewhere only the last. A failure clears the line, so its error stays one
 * line. Stdout stays for the answer (and `--json`).
 */
export async function withProgress<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now()
  const tty = process.stderr.isTTY === true
  const secs = () => ((Date.now() - started) / 1000).toFixed(1)
  if (tty) process.stderr.write(`${label}...`)
  const timer = tty ? setInterval(() => process.stderr.write(`\r${label}... ${secs()} s`), 1000) : undefined
  try {
    const result = await work()
    process.stderr.write(`${tty ? '\r\x1b[K' : ''}${label}... done (${secs()} s)\n`)
    return result
  } catch (err) {
    if (tty) process.stderr.write('\r\x1b[K')
    throw err
  } finally {
    clearInterval(timer)
  }
}
