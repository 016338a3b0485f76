/**
 * CPU time of the platform's processes, from /proc (Linux), for benchmarks that report CPU per
 * operation: figures that hold on a loaded machine, where wall times do not.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

const TICKS_PER_S = 100

/** A process's own CPU plus that of its waited-for children (utime, stime, cutime, cstime), s; undefined when gone. */
function ownCpu(pid: number): { s: number; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces: fields after its closing parenthesis.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])
    return { s: ticks / TICKS_PER_S, ppid: Number(f[1]) }
  } catch {
    return undefined
  }
}

function readPid(file: string): number | undefined {
  try {
    const n = Number.parseInt(readFileSync(file, 'utf8').split('\n')[0]!.trim(), 10)
    return Number.isInteger(n) && n > 0 ? n : undefined
  } catch {
    return undefined
  }
}

/** The platform's processes by part: each a root pid whose descendants count with it. */
export function platformProcesses(home: string, dockerHost: string | undefined): Record<string, number> {
  const run = join(home, 'run')
  const out: Record<string, number> = {}
  const add = (name: string, pid: number | undefined) => {
    if (pid !== undefined) out[name] = pid
  }
  add('services', readPid(join(run, 'wharf.pid')))
  add('router', readPid(join(run, 'router.pid')))
  add('workers', readPid(join(run, 'workers.pid')))
  add('builder', readPid(join(run, 'builder.pid')))
  add('nats', readPid(join(run, 'nats.pid')))
  add('nginx', readPid(join(run, 'nginx.pid')))
  add('postgres', readPid(join(home, 'postgres', 'postmaster.pid')))
  // The engine (dockerd with its containerd; the containers' shims are not its descendants).
  const socket = dockerHost?.startsWith('unix://') ? dockerHost.slice('unix://'.length) : undefined
  if (socket) add('dockerd', readPid(join(dirname(socket), 'docker.pid')))
  return out
}

/** CPU seconds used so far by each part of `roots` with all its descendants. */
export function cpuByPart(roots: Record<string, number>): Record<string, number> {
  const procs = new Map<number, { s: number; ppid: number }>()
  for (const name of readdirSync('/proc')) {
    const pid = Number(name)
    if (!Number.isInteger(pid)) continue
    const c = ownCpu(pid)
    if (c) procs.set(pid, c)
  }
  const children = new Map<number, number[]>()
  for (const [pid, c] of procs) {
    let xs = children.get(c.ppid)
    if (!xs) children.set(c.ppid, (xs = []))
    xs.push(pid)
  }
  const out: Record<string, number> = {}
  for (const [part, root] of Object.entries(roots)) {
    let s = 0
    const todo = [root]
    while (todo.length > 0) {
      const pid = todo.pop()!
      s += procs.get(pid)?.s ?? 0
      todo.push(...(children.get(pid) ?? []))
    }
    out[part] = s
  }
  return out
}

/** `after - before` per part, ms per operation (`ops`), rounded to 0.01. */
export function cpuPerOp(before: Record<string, number>, after: Record<string, number>, ops: number): Record<string, number> {
  return Object.fromEntries(Object.keys(after).map((k) => [k, Math.round(((after[k]! - (before[k] ?? 0)) * 100_000) / Math.max(1, ops)) / 100]))
}

/** CPU time (user + system), us, of the worker processes of the nginx master in `pidfile` (0 when it is gone). */
export function nginxWorkersCpuUs(pidfile: string): number {
  const master = readPid(pidfile)
  let ticks = 0
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(f[1]) === master) ticks += Number(f[11]) + Number(f[12])
    } catch {
      // Gone meanwhile.
    }
  }
  return (ticks * 1_000_000) / TICKS_PER_S
}
