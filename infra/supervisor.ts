/**
 * The embedded platform's supervisor: `make up` starts it last; every second it looks at the pid of
 * each process of each part (NATS, Postgres, nginx, the registry, the Docker engine, the Ceph daemons,
 * the services, the builder) and starts again, with the part's own idempotent `start`, any part with
 * a process that died. A start that fails is tried again with bounded exponential backoff (1 s
 * doubling up to 30 s; back to 1 s once the part ran for a minute). Restarts are recorded for
 * `make status`. On a production host systemd does this job (infra/systemd/).
 */
import { backoffMs, type BackoffOptions } from '../core/backoff.js'
import type { ProcessId } from './proc.js'

export interface SupervisedPart {
  name: string
  /** The pid of each of its processes, undefined for one that is not running; empty: not supervised. */
  processes(): (number | undefined)[]
  /**
   * Starts what is not running and waits until the part answers; idempotent. Answers `running` when
   * it found the part running after all (another starter, `make up`, brought it back meanwhile).
   */
  start(): Promise<unknown>
  /** See `Part.orphanedWorkers`. */
  orphanedWorkers?: boolean
}

/** What the supervisor knows of one part, as `make status` shows it. */
export interface PartRecord {
  state: 'up' | 'restarting' | 'waiting' | 'unsupervised'
  /** Starts after a death that brought it back. */
  restarts: number
  /** Starts that failed (each is tried again after the backoff). */
  failures: number
  lastRestartAt?: string
  /** How long the last restart took until the part answered, ms. */
  lastRestartMs?: number
  lastError?: string
}

export interface SupervisorState {
  pid: number
  since: string
  parts: Record<string, PartRecord>
}

export interface SupervisorOptions {
  parts: readonly SupervisedPart[]
  /** How often every part is looked at, ms, default 1_000. */
  intervalMs?: number
  /** Pauses between failed starts: default 1 s doubling up to 30 s. */
  backoff?: BackoffOptions
  /** How long a part must run before its backoff starts again from the first pause, ms, default 60_000. */
  stableMs?: number
  /** Told after every change (to write the record `make status` reads). */
  onChange?(state: SupervisorState): void
  /** One line of the log per restart, failure and recovery. */
  log(level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, msg: string): void
  /** The children of a pid, and whether one still runs: for parts with orphaned workers. */
  children?(pid: number): ProcessId[]
  stillRuns?(p: ProcessId): boolean
  kill?(pid: number): void
  now?(): number
}

interface Tracked {
  part: SupervisedPart
  record: PartRecord
  attempts: number
  nextTryAt: number
  upSince: number
  inFlight: Promise<void> | undefined
  workers: ProcessId[]
}

export class Supervisor {
  readonly #o: SupervisorOptions
  readonly #tracked: Tracked[]
  readonly #since: string
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  readonly #now: () => number

  constructor(opts: SupervisorOptions) {
    this.#o = opts
    this.#now = opts.now ?? Date.now
    this.#since = new Date(this.#now()).toISOString()
    this.#tracked = opts.parts.map((part) => ({
      part,
      record: { state: 'up', restarts: 0, failures: 0 },
      attempts: 0,
      nextTryAt: 0,
      upSince: this.#now(),
      inFlight: undefined,
      workers: [],
    }))
  }

  state(): SupervisorState {
    return { pid: process.pid, since: this.#since, parts: Object.fromEntries(this.#tracked.map((t) => [t.part.name, { ...t.record }])) }
  }

  /** Looks at every part once; starts the dead ones whose backoff has passed. Resolves when those starts are under way. */
  tick(): void {
    for (const t of this.#tracked) {
      if (t.inFlight || this.#stopped) continue
      const pids = t.part.processes()
      if (pids.length === 0) {
        this.#set(t, { state: 'unsupervised' })
        continue
      }
      if (pids.every((p) => p !== undefined)) {
        if (t.part.orphanedWorkers && this.#o.children) t.workers = pids.flatMap((p) => this.#o.children!(p!))
        if (t.record.state !== 'up') this.#set(t, { state: 'up' })
        if (t.attempts > 0 && this.#now() - t.upSince >= (this.#o.stableMs ?? 60_000)) t.attempts = 0
        continue
      }
      if (this.#now() < t.nextTryAt) continue
      t.inFlight = this.#restart(t).finally(() => (t.inFlight = undefined))
    }
  }

  /** Every in-flight start settled (for tests). */
  async settled(): Promise<void> {
    await Promise.all(this.#tracked.map((t) => t.inFlight))
  }

  /** Ticks every `intervalMs` until {@link stop}. */
  run(): void {
    const loop = () => {
      if (this.#stopped) return
      this.tick()
      this.#timer = setTimeout(loop, this.#o.intervalMs ?? 1_000)
    }
    loop()
  }

  /** Stops looking; starts under way finish. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.settled()
  }

  async #restart(t: Tracked): Promise<void> {
    const { part } = t
    const t0 = this.#now()
    this.#set(t, { state: 'restarting' })
    // Workers of a dead master keep its ports: stop those this supervisor saw it fork (pid and start time).
    for (const w of t.workers) {
      if (this.#o.stillRuns?.(w)) {
        this.#o.log('warn', { part: part.name, pid: w.pid }, 'stopping a worker left by the dead process')
        this.#o.kill?.(w.pid)
      }
    }
    t.workers = []
    this.#o.log('warn', { part: part.name, attempt: t.attempts + 1 }, `${part.name} is down; starting it again`)
    try {
      const result = await part.start()
      const took = this.#now() - t0
      t.upSince = this.#now()
      if (result === 'running') {
        // Not this supervisor's restart: `make up` started it first (see infra/start-lock.ts).
        this.#set(t, { state: 'up' })
        this.#o.log('info', { part: part.name, tookMs: took }, `${part.name} was started by another starter meanwhile (make up); left alone`)
        return
      }
      t.attempts++
      this.#set(t, { state: 'up', restarts: t.record.restarts + 1, lastRestartAt: new Date(t0).toISOString(), lastRestartMs: took })
      this.#o.log('info', { part: part.name, tookMs: took }, `${part.name} is back`)
    } catch (err) {
      const message = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 300)
      const wait = backoffMs(t.attempts, { baseMs: 1_000, maxMs: 30_000, ...this.#o.backoff })
      t.attempts++
      t.nextTryAt = this.#now() + wait
      this.#set(t, { state: 'waiting', failures: t.record.failures + 1, lastError: message })
      this.#o.log('error', { part: part.name, err: message, retryInMs: wait }, `${part.name} did not start; trying again`)
    }
  }

  #set(t: Tracked, change: Partial<PartRecord>): void {
    const before = JSON.stringify(t.record)
    Object.assign(t.record, change)
    if (JSON.stringify(t.record) !== before) this.#o.onChange?.(this.state())
  }
}
