/**
 * PostgreSQL's own client tools, run as child processes: `pg_dump` (custom format, streamed),
 * `pg_restore` (archive -> SQL, and its table of contents) and `psql` (the restore, in one
 * transaction). The password goes in the environment (PGPASSWORD), never on a command line.
 */
import { spawn, type ChildProcess } from 'node:child_process'

/** Connection settings for a client tool from a `postgres://` URL: the URL without its password, and the password. */
export function connection(url: string): { dbname: string; env: NodeJS.ProcessEnv } {
  const u = new URL(url)
  const password = decodeURIComponent(u.password)
  u.password = ''
  return { dbname: u.toString(), env: { ...process.env, ...(password ? { PGPASSWORD: password } : {}), PGCONNECT_TIMEOUT: '10' } }
}

/** Stderr lines kept for the error message of a failed tool. */
const STDERR_LINES = 5

export interface Tool {
  child: ChildProcess
  /** Resolves when the tool exits 0; rejects with its last stderr lines otherwise. */
  done: Promise<void>
}

/** Starts `cmd` with `args`; stdout piped (or to `stdout`: 'ignore'), stderr collected. */
export function startTool(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; stdin?: 'pipe' | 'ignore'; stdout?: 'pipe' | 'ignore' } = {}): Tool {
  const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: [opts.stdin ?? 'ignore', opts.stdout ?? 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000)
  })
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (err) => reject(new Error(`${cmd} could not run: ${err.message}`, { cause: err })))
    child.on('close', (code, signal) => {
      if (code === 0) return resolve()
      const tail = stderr.trim().split('\n').slice(-STDERR_LINES).join(' | ')
      reject(new Error(`${cmd} ${signal ? `was stopped by ${signal}` : `exited with code ${code}`}${tail ? `: ${tail}` : ''}`))
    })
  })
  done.catch(() => {})
  return { child, done }
}

/** Runs `cmd` to its end and answers its stdout. */
export async function runTool(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const tool = startTool(cmd, args, env ? { env } : {})
  let out = ''
  tool.child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')))
  await tool.done
  return out
}

let version: Promise<string> | undefined
/** `pg_dump (PostgreSQL) 15.18 (Debian ...)`, asked once. */
export function pgDumpVersion(): Promise<string> {
  version ??= runTool('pg_dump', ['--version']).then((v) => v.trim())
  return version
}

/**
 * `pg_dump --format=custom` of `schemas` at an exported snapshot (the same instant the caller read
 * the checkpoints in): the archive on the tool's stdout.
 */
export function pgDump(url: string, opts: { snapshot: string; schemas: readonly string[] }): Tool {
  const { dbname, env } = connection(url)
  const args = [
    '--format=custom',
    '--compress=6',
    '--no-owner',
    '--no-privileges',
    `--snapshot=${opts.snapshot}`,
    ...opts.schemas.map((s) => `--schema=${s}`),
    `--dbname=${dbname}`,
  ]
  return startTool('pg_dump', args, { env })
}

/** The archive's table of contents (`pg_restore --list`); fails on a file that is not a readable archive. */
export function pgRestoreList(file: string): Promise<string> {
  return runTool('pg_restore', ['--list', file])
}

/** The archive as SQL in `sqlFile`; fails when any part of the archive cannot be read. */
export async function pgRestoreToSql(file: string, sqlFile: string): Promise<void> {
  await runTool('pg_restore', ['--no-owner', '--no-privileges', '--exit-on-error', `--file=${sqlFile}`, file])
}

/**
 * Runs `sql` and then `file` with psql in ONE transaction, stopping at the first error (then
 * nothing of either is committed).
 */
export async function psqlInOneTransaction(url: string, sql: string, file: string): Promise<void> {
  const { dbname, env } = connection(url)
  await runTool(
    'psql',
    ['--no-psqlrc', '--quiet', '--set=ON_ERROR_STOP=1', '--single-transaction', `--command=${sql}`, `--file=${file}`, `--dbname=${dbname}`],
    env,
  )
}
