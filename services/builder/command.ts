/**
 * What an SSH client may ask the builder to run: `git-receive-pack '<app>.git'` (push) or
 * `git-upload-pack '<app>.git'` (clone, fetch). Anything else is refused with a one-line reason.
 */
import { APP_NAME_RE } from '../../domain/index.js'

export type GitService = 'git-receive-pack' | 'git-upload-pack'

export type GitCommand = { ok: true; service: GitService; app: string } | { ok: false; reason: string }

const USAGE = 'Wharf only takes git pushes and fetches here: git push wharf main'

/**
 * Parses the command an SSH exec request carries. The repo is `<app>.git` or `<app>`, quoted or not,
 * with at most one leading `/` (what `ssh://host/<app>.git` sends). Paths with other directories,
 * `..`, or characters outside an app name are refused.
 */
export function parseGitCommand(command: string): GitCommand {
  const m = /^(git-receive-pack|git-upload-pack|git receive-pack|git upload-pack) +(.*)$/s.exec(command.trim())
  if (!m) return { ok: false, reason: `${USAGE} (not: ${printable(command)})` }
  const service = m[1]!.replace(' ', '-') as GitService
  let path = m[2]!.trim()
  const q = /^'([^']*)'$/.exec(path) ?? /^"([^"]*)"$/.exec(path)
  if (q) path = q[1]!
  if (path.startsWith('/')) path = path.slice(1)
  if (path.endsWith('/')) path = path.slice(0, -1)
  const name = path.endsWith('.git') ? path.slice(0, -'.git'.length) : path
  if (!name || name.length > 30 || !APP_NAME_RE.test(name)) {
    return { ok: false, reason: `${printable(m[2]!.trim())} is not an app repository: use <app>.git, e.g. ssh://git@<host>:<port>/myapp.git` }
  }
  return { ok: true, service, app: name }
}

/** At most 60 characters of untrusted text, control characters shown as `?`. */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
  return clean.length > 60 ? `${clean.slice(0, 57)}...` : clean
}
