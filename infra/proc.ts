import { spawn, execFile } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { dirname } from 'node:path'
import { promisify } from 'node:util'
import { isAlive, livePid } from '../core/proc.js'

export { isAlive, livePid, readPid } from '../core/proc.js'

export const execFileP = promisify(execFile)

export interface DaemonSpec {
  cmd: string
  args: string[]
  /** Where stdout and stderr go (appended). */
  logFile: string
  /** Where the pid is recorded (written here unless the daemon writes it itself). */
  pidfile: string
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** The daemon writes `pidfile` itself (dockerd refuses to start when it finds one already). */
  writesOwnPid?: boolean
}

/** Starts a long-running process detached from this one, output to its log, pid recorded. */
export function startDaemon(spec: DaemonSpec): number {
  mkdirSync(dirname(spec.logFile), { recursive: true })
  mkdirSync(dirname(spec.pidfile), { recursive: true })
  const out = openSync(spec.logFile, 'a')
  const child = spawn(spec.cmd, spec.args, {
    detached: true,
    stdio: ['ignore', out, out],
    env: spec.env ?? process.env,
    cwd: spec.cwd,
  })
  closeSync(out)
  child.unref()
  if (!child.pid) throw new Error(`could not start ${spec.cmd}`)
  if (!spec.writesOwnPid) writeFileSync(spec.pidfile, `${child.pid}\n`)
  return child.pid
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Stops the process in `pidfile` with `signal`, waits up to `timeoutMs` (default 20_000), then
 * SIGKILL. Only ever a pid Wharf recorded itself.
 */
export async function stopPidfile(pidfile: string, opts: { signal?: NodeJS.Signals; timeoutMs?: number } = {}): Promise<boolean> {
  const pid = livePid(pidfile)
  if (!pid) return false
  await stopPid(pid, opts)
  rmSync(pidfile, { force: true })
  return true
}

export async function stopPid(pid: number, opts: { signal?: NodeJS.Signals; timeoutMs?: number } = {}): Promise<void> {
  try {
    process.kill(pid, opts.signal ?? 'SIGTERM')
  } catch {
    return
  }
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000)
  while (isAlive(pid) && Date.now() < deadline) await sleep(50)
  if (isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
    while (isAlive(pid)) await sleep(50)
  }
}

/** Polls `check` every `intervalMs` until it resolves true, or throws after `timeoutMs`. */
export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      if (await check()) return
    } catch (err) {
      last = err
    }
    await sleep(intervalMs)
  }
  throw new Error(`${what} did not come up within ${Math.round(timeoutMs / 1000)} s${last ? `: ${(last as Error).message}` : ''}`)
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ port, host })
    const done = (ok: boolean) => {
      sock.destroy()
      resolve(ok)
    }
    sock.setTimeout(timeoutMs, () => done(false))
    sock.once('connect', () => done(true))
    sock.once('error', () => done(false))
  })
}

/** Last `n` lines of a log file, for error messages that say why a part did not start. */
export function tail(file: string, n = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n')
  } catch {
    return '(no log)'
  }
}

/** A process told apart from a later one that reuses its pid: the pid and its start time (clock ticks after boot). */
export interface ProcessId {
  pid: number
  start: string
}

function statOf(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command (which may hold spaces and parentheses): state is [0], ppid [1], starttime [19].
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** The live children of `pid` (read from /proc). */
export function childrenOf(pid: number): ProcessId[] {
  const out: ProcessId[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const f = statOf(Number(name))
    if (f && Number(f[1]) === pid && f[0] !== 'Z') out.push({ pid: Number(name), start: f[19]! })
  }
  return out
}

/** The pid and start time of process `pid` (default this one), undefined when it is gone. */
export function processId(pid: number = process.pid): ProcessId | undefined {
  const f = statOf(pid)
  return f ? { pid, start: f[19]! } : undefined
}

/** True when `p` still runs (the same process, not a later one with its pid). */
export function stillRuns(p: ProcessId): boolean {
  const f = statOf(p.pid)
  return !!f && f[19] === p.start && f[0] !== 'Z' && f[0] !== 'X'
}
