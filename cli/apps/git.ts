/**
 * The git side of the CLI: the `wharf` remote of an app and the builder's host key in
 * ~/.ssh/known_hosts, so the first `git push wharf main` neither prompts nor fails.
 */
import { execFileSync } from 'node:child_process'
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { Command } from 'commander'
import { CliError, type ApiClient } from '../client.js'
import { api, withApp } from './common.js'
import { resolveApp } from '../app.js'

export interface BuilderInfo {
  host: string
  port: number
  hostKey: string
  fingerprint: string
  knownHosts: string
}

/** The URL of the builder's git remote for an app. */
export function remoteUrl(app: string, b: Pick<BuilderInfo, 'host' | 'port'>): string {
  return `ssh://git@${b.host}:${b.port}/${app}.git`
}

function inGitRepo(): boolean {
  try {
    execFileSync('git', ['rev-parse', '--git-dir'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Adds (or points) the git remote `name` at the app; answers the URL, or undefined outside a repo. */
export function setRemote(app: string, b: Pick<BuilderInfo, 'host' | 'port'>, name = 'wharf'): string | undefined {
  if (!inGitRepo()) return undefined
  const url = remoteUrl(app, b)
  try {
    execFileSync('git', ['remote', 'get-url', name], { stdio: 'ignore' })
    execFileSync('git', ['remote', 'set-url', name, url], { stdio: 'ignore' })
  } catch {
    execFileSync('git', ['remote', 'add', name, url], { stdio: 'ignore' })
  }
  return url
}

/**
 * Puts the builder's host key in ~/.ssh/known_hosts unless it is there. An entry for the same
 * address with another key is left alone (ssh will refuse it loudly): answers what happened.
 */
export function trustBuilder(b: BuilderInfo, file = join(homedir(), '.ssh', 'known_hosts')): 'added' | 'known' | 'conflict' {
  const [hostPart] = b.knownHosts.split(' ')
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n') : []
  const mine = lines.filter((l) => l.split(' ')[0]?.split(',').includes(hostPart!))
  if (mine.some((l) => l.includes(b.hostKey))) return 'known'
  if (mine.some((l) => l.split(' ')[1] === b.hostKey.split(' ')[0])) return 'conflict'
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 })
  const text = lines.length && lines[lines.length - 1] !== '' ? `\n${b.knownHosts}\n` : `${b.knownHosts}\n`
  appendFileSync(file, text, { mode: 0o600 })
  return 'added'
}

/** Asks the controller where the builder is; falls back to 127.0.0.1 and `fallbackPort` without a key. */
export async function builderInfo(client: ApiClient): Promise<BuilderInfo | undefined> {
  try {
    return await client.call<BuilderInfo>('GET', '/v1/builder')
  } catch (err) {
    if (err instanceof CliError && err.code === 'WHARF_UNAVAILABLE' && /builder has not started/.test(err.message)) return undefined
    throw err
  }
}

/** Sets the remote and trusts the builder's key, printing one line for each. */
export async function connectRepo(app: string, portOverride?: string): Promise<void> {
  const info = await builderInfo(api())
  const where = { host: info?.host ?? '127.0.0.1', port: portOverride ? Number(portOverride) : (info?.port ?? 2222) }
  const url = setRemote(app, where)
  if (url) console.log(`Git remote wharf: ${url}`)
  if (!info || where.port !== info.port) return
  const trusted = trustBuilder(info)
  if (trusted === 'added') console.log(`Trusted the builder's host key (${info.fingerprint}) in ~/.ssh/known_hosts`)
  if (trusted === 'conflict') {
    console.error(
      `wharf: ~/.ssh/known_hosts has another key for ${info.knownHosts.split(' ')[0]}; if the platform was made anew, remove it: ssh-keygen -R '${info.knownHosts.split(' ')[0]}'`,
    )
  }
}

/** `git:remote`: adds the `wharf` remote of an app to the repo here (Heroku's `git:remote -a app`). */
export function gitTopic(program: Command): void {
  withApp(program.command('git:remote').description('add the git remote `wharf` for an app to this repo, and trust the builder'))
    .option('-r, --remote <name>', 'the remote name', 'wharf')
    .action(async (opts: { app?: string; remote: string }) => {
      const app = resolveApp(opts.app)
      if (!inGitRepo()) throw new CliError('WHARF_INVALID', "not in a git repository: run it in your app's repo (git init first)")
      const info = await builderInfo(api())
      const url = setRemote(app, { host: info?.host ?? '127.0.0.1', port: info?.port ?? 2222 }, opts.remote)
      console.log(`Git remote ${opts.remote}: ${url}`)
      if (info && trustBuilder(info) === 'added') console.log(`Trusted the builder's host key (${info.fingerprint}) in ~/.ssh/known_hosts`)
    })
}
