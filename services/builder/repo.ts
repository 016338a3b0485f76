import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { promisify } from 'node:util'
import { installHook } from './hook.js'

const execFileP = promisify(execFile)

/** Where an app's bare repository lives: `$WHARF_HOME/git/<app>.git`. */
export function repoPath(home: string, app: string): string {
  return join(home, 'git', `${app}.git`)
}

/** The app a repo belongs to, by its creation time: a destroyed app's repo is not a new app's. */
export async function repoOwner(repo: string): Promise<string | undefined> {
  try {
    return (await execFileP('git', ['--git-dir', repo, 'config', 'wharf.appcreated'])).stdout.trim()
  } catch {
    return undefined
  }
}

/**
 * The app's bare repo, created on its first push, with Wharf's pre-receive hook. Pushes may move
 * `main` by force (as on Heroku), but never delete it. `appCreated` (the app's creation time) tells
 * a repo left by a destroyed app of the same name, which is replaced.
 */
export async function ensureRepo(home: string, app: string, appCreated: string): Promise<string> {
  const repo = repoPath(home, app)
  if (existsSync(join(repo, 'HEAD')) && (await repoOwner(repo)) !== appCreated) rmSync(repo, { recursive: true, force: true })
  if (!existsSync(join(repo, 'HEAD'))) {
    mkdirSync(repo, { recursive: true })
    await execFileP('git', ['init', '--quiet', '--bare', '--initial-branch=main', repo])
    for (const [k, v] of [
      ['receive.denyDeletes', 'true'],
      ['receive.denyNonFastForwards', 'false'],
      // A keepalive packet every 5 s while the hook (the build) is silent keeps slow builds connected.
      ['receive.keepAlive', '5'],
      ['gc.auto', '0'],
      ['wharf.appcreated', appCreated],
    ] as const) {
      await execFileP('git', ['--git-dir', repo, 'config', k, v])
    }
  }
  installHook(repo)
  return repo
}

/** A git command on the repo with the push's quarantine variables (pushed objects visible). */
export class PushedTree {
  constructor(
    readonly repo: string,
    readonly sha: string,
    readonly gitEnv: Record<string, string>,
  ) {}

  #env(): NodeJS.ProcessEnv {
    return { PATH: process.env.PATH, HOME: process.env.HOME, GIT_DIR: this.repo, ...this.gitEnv }
  }

  /** The names at the root of the commit's tree. */
  async rootFiles(): Promise<Set<string>> {
    const { stdout } = await execFileP('git', ['ls-tree', '--name-only', this.sha], { env: this.#env(), maxBuffer: 16 << 20 })
    return new Set(stdout.split('\n').filter(Boolean))
  }

  /** A file of the commit (at most 1 MiB), or undefined when there is none. */
  async read(path: string): Promise<string | undefined> {
    try {
      const { stdout } = await execFileP('git', ['show', `${this.sha}:${path}`], { env: this.#env(), maxBuffer: 1 << 20 })
      return stdout
    } catch {
      return undefined
    }
  }

  /** `git archive` of the commit as a tar stream (the build context), with extra files added. */
  archive(extra: Record<string, string> = {}): { stream: Readable; done: Promise<void> } {
    const args = ['archive', '--format=tar']
    for (const [path, content] of Object.entries(extra)) args.push(`--add-virtual-file=${path}:${content}`)
    args.push(this.sha)
    const child = spawn('git', args, { env: this.#env(), stdio: ['ignore', 'pipe', 'pipe'] })
    let err = ''
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const done = new Promise<void>((resolve, reject) => {
      child.on('error', reject)
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`git archive failed: ${err.trim() || `exit ${code}`}`))))
    })
    return { stream: child.stdout, done }
  }
}
