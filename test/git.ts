/**
 * Git and SSH as a user has them, for integration tests and benchmarks: a key pair made with
 * ssh-keygen, a repo with files committed, and `git push` over SSH to the builder.
 */
import { execFileSync, spawn } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

export interface SshKey {
  path: string
  publicKey: string
}

/** An ed25519 key pair at `<dir>/<name>` (no passphrase). */
export function makeSshKey(dir: string, name = 'id_ed25519'): SshKey {
  mkdirSync(dir, { recursive: true })
  const path = join(dir, name)
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path])
  return { path, publicKey: readFileSync(`${path}.pub`, 'utf8').trim() }
}

/** `message` signed with the private key at `privatePath` (`ssh-keygen -Y sign -n <namespace>`): the armored signature. */
export function sshSign(privatePath: string, message: string, namespace = 'wharf-keys'): string {
  return execFileSync('ssh-keygen', ['-Y', 'sign', '-q', '-n', namespace, '-f', privatePath], { input: message, stdio: ['pipe', 'pipe', 'ignore'] }).toString()
}

/** A git repo at `dir` with `files` committed on `branch` (default main). Answers the commit sha. */
export function makeRepo(dir: string, files: Record<string, string>, opts: { branch?: string } = {}): string {
  mkdirSync(dir, { recursive: true })
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, env: gitEnv() }).toString().trim()
  git('init', '-q', `--initial-branch=${opts.branch ?? 'main'}`)
  return commit(dir, files)
}

/** Writes `files` into the repo and commits them. Answers the new sha. */
export function commit(dir: string, files: Record<string, string>, message = 'change'): string {
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true })
    writeFileSync(join(dir, name), content)
  }
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, env: gitEnv() }).toString().trim()
  git('add', '-A')
  git('commit', '-q', '--allow-empty', '-m', message)
  return git('rev-parse', 'HEAD')
}

function gitEnv(): NodeJS.ProcessEnv {
  return { ...process.env, GIT_AUTHOR_NAME: 'Test', GIT_AUTHOR_EMAIL: 'test@example.com', GIT_COMMITTER_NAME: 'Test', GIT_COMMITTER_EMAIL: 'test@example.com' }
}

/** The ssh command git uses: this key only, no known_hosts prompts, never interactive. */
export function sshCommand(key: string): string {
  return `ssh -i ${key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR`
}

export interface RunResult {
  code: number
  /** stdout and stderr, interleaved as they came. */
  output: string
  ms: number
}

/** Runs a command and collects its output; never throws on a non-zero exit. */
export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; onOutput?: (text: string) => void } = {}): Promise<RunResult> {
  const t0 = Date.now()
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    const add = (d: Buffer) => {
      output += d.toString()
      opts.onOutput?.(d.toString())
    }
    child.stdout.on('data', add)
    child.stderr.on('data', add)
    child.on('error', reject)
    child.on('close', (code) => resolve({ code: code ?? 1, output, ms: Date.now() - t0 }))
  })
}

/** `git push <url> <refspec>` over SSH with `key`. */
export function gitPush(dir: string, url: string, key: string, refspec = 'main', extra: string[] = [], onOutput?: (text: string) => void): Promise<RunResult> {
  return run('git', ['push', ...extra, url, refspec], { cwd: dir, env: { GIT_SSH_COMMAND: sshCommand(key) }, ...(onOutput ? { onOutput } : {}) })
}

/** `ssh -p <port> git@127.0.0.1 <command>` with `key`. */
export function sshRun(port: number, key: string, command?: string): Promise<RunResult> {
  const args = [...sshCommand(key).split(' ').slice(1), '-p', String(port), 'git@127.0.0.1']
  if (command !== undefined) args.push(command)
  return run('ssh', args)
}
