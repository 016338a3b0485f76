import type { Command } from 'commander'
import { resolveApp } from '../app.js'
import { ApiClient } from '../client.js'

/** `-a/--app`: the app to act on (default: the app of the `wharf` git remote). */
export function withApp(cmd: Command): Command {
  return cmd.option('-a, --app <app>', 'the app (default: the app of the git remote `wharf`)')
}

/** The app path of the API: `/v1/apps/<app>`. */
export function appPath(opts: { app?: string }, rest = ''): string {
  return `/v1/apps/${encodeURIComponent(resolveApp(opts.app))}${rest}`
}

export function api(): ApiClient {
  return ApiClient.fromEnv()
}

/** `KEY=value` arguments to an object; throws on an argument without `=`. */
export function pairs(args: readonly string[], what: string, err: (message: string) => Error): Record<string, string> {
  const out: Record<string, string> = {}
  for (const a of args) {
    const eq = a.indexOf('=')
    if (eq <= 0) throw err(`expected ${what}, got ${JSON.stringify(a)}`)
    out[a.slice(0, eq)] = a.slice(eq + 1)
  }
  return out
}
