import { execFileSync } from 'node:child_process'
import { CliError } from './client.js'

/** The app of the git remote `wharf` (`ssh://git@host:port/<app>.git`), if any. */
export function appFromGitRemote(cwd = process.cwd()): string | undefined {
  try {
    const url = execFileSync('git', ['remote', 'get-url', 'wharf'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim()
    return /\/([a-z][a-z0-9-]*)\.git$/.exec(url)?.[1]
  } catch {
    return undefined
  }
}

/** `-a/--app`, else the app of the `wharf` git remote, else a clear error. */
export function resolveApp(opt: string | undefined): string {
  const app = opt ?? appFromGitRemote()
  if (!app) throw new CliError('WHARF_INVALID', 'which app? give -a <app>, or run inside a git checkout with a `wharf` remote')
  return app
}
