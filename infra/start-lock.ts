/**
 * One starter per part at a time. `make up` and the supervisor both start parts with the part's own
 * idempotent `start` (which looks at the pidfile, then spawns): when the supervisor is alive and a
 * part is dead, a `make up` could look at the same moment, both find it dead, and both spawn it
 * (two nginx masters on one port, two dockerds on one data-root). Both take the part's start lock
 * (`$WHARF_HOME/run/<part>.start.lock`) around `start`: the second one waits until the first is done,
 * then its `start` finds the part running and leaves it alone.
 *
 * The lock file says who holds it (pid and start time, so a later process with a reused pid is not
 * taken for the holder). It is made complete beside the lock and hard-linked into place, which
 * fails when a lock exists: a reader never sees a half-written one. A lock whose holder no longer
 * runs (killed mid-start) is broken by the next starter.
 */
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ProcessId } from './proc.js'

/** Who holds a start lock. */
export interface LockHolder extends ProcessId {
  /** Who that is, for the waiting one's message: `make up`, `supervisor`. */
  by: string
  /** When it took the lock, ms since the epoch. */
  at: number
  /** Tells this taking of the lock apart from any other (also by the same process). */
  token: string
}

/**
 * What a starter does about the lock file it found: `take` it (there is none), `wait` for its
 * holder (it still runs), or `break` it (its holder is gone, or the file is not a lock Wharf wrote).
 */
export function lockDecision(found: LockHolder | 'none' | 'unreadable', runs: (p: ProcessId) => boolean): 'take' | 'wait' | 'break' {
  if (found === 'none') return 'take'
  if (found === 'unreadable') return 'break'
  return runs(found) ? 'wait' : 'break'
}

export interface StartLockOptions {
  /** Who this is (`make up`, `supervisor`), written into the lock. */
  by: string
  /** This process (pid and start time). */
  self: ProcessId
  /** Whether a holder still runs (proc.ts `stillRuns`). */
  runs: (p: ProcessId) => boolean
  /** How long to wait for a holder that runs, ms, default 600_000 (an engine's start may wait out its containers' stop grace). */
  timeoutMs?: number
  /** Pause between two looks at the lock, ms, default 100. */
  pollMs?: number
  /** Told once when this one has to wait, with the holder. */
  onWait?: (holder: LockHolder) => void
}

/** The start lock of part `name` under the run directory. */
export function startLockPath(runDir: string, name: string): string {
  return join(runDir, `${name}.start.lock`)
}

function read(file: string): LockHolder | 'none' | 'unreadable' {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'none' : 'unreadable'
  }
  try {
    const h = JSON.parse(text) as Partial<LockHolder>
    if (Number.isInteger(h.pid) && typeof h.start === 'string' && typeof h.token === 'string' && typeof h.by === 'string' && typeof h.at === 'number')
      return h as LockHolder
  } catch {}
  return 'unreadable'
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Runs `fn` holding the start lock `file`; waits while another process that still runs holds it. */
export async function withStartLock<T>(file: string, opts: StartLockOptions, fn: () => Promise<T>): Promise<T> {
  const token = `${opts.self.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`
  const mine: LockHolder = { ...opts.self, by: opts.by, at: Date.now(), token }
  const draft = `${file}.${token}`
  writeFileSync(draft, `${JSON.stringify(mine)}\n`)
  const deadline = Date.now() + (opts.timeoutMs ?? 600_000)
  let told = false
  try {
    for (;;) {
      try {
        linkSync(draft, file)
        break
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      const found = read(file)
      const decision = lockDecision(found, opts.runs)
      if (decision === 'break') breakLock(file, found, token)
      else if (decision === 'wait') {
        const holder = found as LockHolder
        if (!told) {
          told = true
          opts.onWait?.(holder)
        }
        if (Date.now() > deadline)
          throw new Error(`${file}: still held by ${holder.by} (pid ${holder.pid}) after ${Math.round((opts.timeoutMs ?? 600_000) / 1000)} s`)
        await sleep(opts.pollMs ?? 100)
      }
    }
  } finally {
    rmSync(draft, { force: true })
  }
  try {
    return await fn()
  } finally {
    // Only this taking's lock: never one a later starter took after breaking this one.
    const now = read(file)
    if (now !== 'none' && now !== 'unreadable' && now.token === token) rmSync(file, { force: true })
  }
}

/**
 * Removes a lock whose holder is gone. Moved aside first and read again: when another starter broke
 * it and took a fresh one meanwhile, that fresh one is put back (a link fails rather than replace a lock).
 */
function breakLock(file: string, seen: LockHolder | 'none' | 'unreadable', token: string): void {
  const aside = `${file}.broken-${token}`
  try {
    renameSync(file, aside)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  const moved = read(aside)
  const same = seen === 'unreadable' ? moved === 'unreadable' : moved !== 'none' && moved !== 'unreadable' && seen !== 'none' && moved.token === seen.token
  if (!same) {
    try {
      linkSync(aside, file)
    } catch {}
  }
  rmSync(aside, { force: true })
}
