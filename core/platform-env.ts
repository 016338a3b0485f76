import { readFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * The settings `make up` wrote to `$WHARF_HOME/wharf.env` (shell syntax, `KEY='value'`), for tools
 * that connect to a running platform (benchmarks, admin commands). Variables already in `env` win.
 * Returns `env` unchanged when there is no such file.
 */
export function withPlatformEnv(env: NodeJS.ProcessEnv, cwd = process.cwd()): NodeJS.ProcessEnv {
  const file = join(env.WHARF_HOME || join(cwd, '.wharf'), 'wharf.env')
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return env
  }
  return { ...parseEnvFile(text), ...env }
}

/** Parses `KEY='value'` lines (values single-quoted, `'\''` for a quote), skipping comments. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)='((?:[^']|'\\'')*)'$/.exec(line.trim())
    if (m) out[m[1]!] = m[2]!.replaceAll("'\\''", "'")
  }
  return out
}
