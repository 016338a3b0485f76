/** `.env` files for config:pull and config:push: `KEY=value` lines, `#` comments, quoted values. */

/** Parses a .env text; throws with the line number on a line that is not `KEY=value`. */
export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim()
    if (!line || line.startsWith('#')) return
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line)
    if (!m) throw new Error(`line ${i + 1} is not KEY=value`)
    let value = m[2]!
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = JSON.parse(value) as string
    else if (value.startsWith("'") && value.endsWith("'") && value.length >= 2) value = value.slice(1, -1)
    out[m[1]!] = value
  })
  return out
}

/** Renders config as .env: plain values as they are, others double-quoted with JSON escapes. */
export function renderDotenv(values: Record<string, string>): string {
  return Object.keys(values)
    .sort()
    .map((k) => {
      const v = values[k]!
      return `${k}=${/^[A-Za-z0-9_./:@+-]*$/.test(v) ? v : JSON.stringify(v)}\n`
    })
    .join('')
}
