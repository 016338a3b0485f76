/**
 * For e2e tests: `bin/wharf` run as a user would, with a HOME of its own (its own
 * ~/.wharf/client.json) against a controller of the test's own.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Test } from 'tap'

const execFileP = promisify(execFile)
const bin = new URL('../bin/wharf', import.meta.url).pathname

export interface Run {
  code: number
  stdout: string
  stderr: string
}

/** Throws unless the CLI is compiled (`make test` builds first; `npx tsc -p .` by hand). */
export function requireBuilt(): void {
  if (!existsSync(new URL('../dist/cli/main.js', import.meta.url))) throw new Error('build first: npx tsc -p .')
}

/** A CLI user: `run(args, cwd?)` runs bin/wharf with `env` (WHARF_URL, WHARF_TOKEN, ...) and a HOME of its own. */
export function cliUser(t: Test, env: Record<string, string>): { home: string; run(args: string[], cwd?: string): Promise<Run> } {
  const home = mkdtempSync(join(tmpdir(), 'wharf-home-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const run = async (args: string[], cwd = home): Promise<Run> => {
    try {
      const { stdout, stderr } = await execFileP(bin, args, { cwd, env: { PATH: process.env.PATH, HOME: home, ...env } })
      return { code: 0, stdout, stderr }
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string }
      return { code: e.code, stdout: e.stdout, stderr: e.stderr }
    }
  }
  return { home, run }
}

/** `cliUser` signed in to a controller by URL and token. */
export function cli(t: Test, url: string, token: string): ReturnType<typeof cliUser> {
  return cliUser(t, { WHARF_URL: url, WHARF_TOKEN: token })
}

/** Asserts a run exited 0. */
export async function ok(t: Test, r: Promise<Run>, what: string): Promise<Run> {
  const res = await r
  t.equal(res.code, 0, `${what}: exit 0 ${res.stderr}`)
  return res
}

/** Asserts a run failed as the CLI should: exit 1, one line `wharf: ... (CODE)`, no stack trace. */
export async function fails(t: Test, r: Promise<Run>, code: string, what: string): Promise<Run> {
  const res = await r
  t.equal(res.code, 1, `${what}: exit 1`)
  t.match(res.stderr, new RegExp(`^wharf: .+ \\(${code}\\)\\n$`), `${what}: one line with ${code}`)
  t.notMatch(res.stderr, /\n\s+at /, `${what}: no stack trace`)
  return res
}
