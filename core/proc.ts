/** The pids Wharf records for the processes it starts (pidfiles), and whether they still run. */
import { readdirSync, readFileSync, rmSync } from 'node:fs'

/**
 * True when `pid` is a live process. A daemon whose parent is gone can linger as a zombie
 * (state Z) that `kill -0` still reports alive, so read /proc instead. A multi-threaded process
 * killed with -9 shows its main thread as a zombie while its other threads are still exiting and
 * still hold its files and sockets: it is alive until every thread is gone.
 */
export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false
  const running = (stat: string) => {
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    return state !== 'Z' && state !== 'X'
  }
  try {
    if (running(readFileSync(`/proc/${pid}/stat`, 'utf8'))) return true
    return readdirSync(`/proc/${pid}/task`).some((tid) => {
      try {
        return running(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'))
      } catch {
        return false
      }
    })
  } catch {
    return false
  }
}

export function readPid(pidfile: string): number | undefined {
  try {
    // Postgres' postmaster.pid has the pid on its first line and more after it.
    const n = Number(readFileSync(pidfile, 'utf8').split('\n')[0]!.trim())
    return Number.isInteger(n) && n > 0 ? n : undefined
  } catch {
    return undefined
  }
}

/** The live pid recorded in `pidfile`, or undefined (a stale file is removed). */
export function livePid(pidfile: string): number | undefined {
  const pid = readPid(pidfile)
  if (pid && isAlive(pid)) return pid
  if (pid) rmSync(pidfile, { force: true })
  return undefined
}
