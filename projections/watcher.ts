import type pg from 'pg'
import { WharfError } from '../core/errors.js'
import { CHECKPOINT_CHANNEL, readCheckpoints, type CheckpointNotice, type ProjectionStatus } from './checkpoints.js'

/** Options of {@link CheckpointWatcher.waitFor}. */
export interface WaitForOptions {
  /** Projections that must reach the sequence; default: the watcher's `projections`. */
  projections?: readonly string[]
  /** Bound of the wait, ms, default 5_000; then `WHARF_TIMEOUT`. */
  timeoutMs?: number
  /** Ends the wait early (rejects with `WHARF_UNAVAILABLE`), e.g. when the client that wanted it left. */
  signal?: AbortSignal
}

/** Options of {@link CheckpointWatcher.until}. */
export interface UntilOptions {
  /** The projections whose progress may change the answer: the probe runs again each time one of their checkpoints moves. */
  projections: readonly string[]
  /** Bound of the wait, ms, default 5_000; then the answer is undefined. */
  timeoutMs?: number
  /** Ends the wait early, answering undefined. */
  signal?: AbortSignal
}

export interface CheckpointWatcherOptions {
  pool: pg.Pool
  /** Names `waitFor` waits on when the call names none. */
  projections: readonly string[]
  /** How long the LISTEN connection stays open with nobody waiting, ms, default 10_000. */
  idleMs?: number
}

/** While listening, how often a wait reads the checkpoints anyway, ms. */
const REFRESH_MS = 1_000

interface Waiter {
  seq: number
  names: readonly string[]
  resolve(): void
  reject(err: Error): void
  timer: NodeJS.Timeout
  /** Takes its listener off the caller's abort signal. */
  detach?: () => void
}

/** A pending {@link CheckpointWatcher.until}. */
interface Prober {
  names: readonly string[]
  /** Runs the probe (again). */
  kick(): void
  fail(err: Error): void
}

/**
 * Read-your-writes for queries: waits until projections' checkpoints reach a log sequence. Works
 * from any process that reaches the database: it LISTENs on the checkpoint channel (one pool
 * connection, held while someone waits and `idleMs` after) and re-reads the checkpoints after each
 * LISTEN starts, so no change is missed between the read and the first notification.
 */
export class CheckpointWatcher {
  readonly #pool: pg.Pool
  readonly #defaults: readonly string[]
  readonly #idleMs: number
  readonly #waiters = new Set<Waiter>()
  /** The waiters by the projections they wait for: a notice of one checks only those. */
  readonly #waitersOf = new Map<string, Set<Waiter>>()
  readonly #probers = new Set<Prober>()
  /** Newest checkpoint seen per projection while listening. */
  readonly #known = new Map<string, { seq: number; status: ProjectionStatus }>()
  #listener: Promise<pg.PoolClient> | undefined
  readonly #released = new WeakSet<pg.PoolClient>()
  readonly #detach = new WeakMap<pg.PoolClient, (destroy: boolean) => void>()
  #idleTimer: NodeJS.Timeout | undefined
  /** When the checkpoints were last read (performance.now()). */
  #refreshedAt = -Infinity
  #closed = false

  constructor(opts: CheckpointWatcherOptions) {
    this.#pool = opts.pool
    this.#defaults = opts.projections
    this.#idleMs = opts.idleMs ?? 10_000
  }

  /**
   * Resolves once every named projection's checkpoint is >= `seq`. Rejects with `WHARF_TIMEOUT` after
   * `timeoutMs`, and at once with `WHARF_UNAVAILABLE` when one of them has failed short of `seq`.
   */
  async waitFor(seq: number, opts: WaitForOptions = {}): Promise<void> {
    if (this.#closed) throw new WharfError('WHARF_UNAVAILABLE', 'checkpoint watcher is closed')
    const names = opts.projections ?? this.#defaults
    if (seq <= 0 || names.length === 0) return
    const timeoutMs = opts.timeoutMs ?? 5_000
    clearTimeout(this.#idleTimer)
    const done = new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        seq,
        names,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#finish(waiter)
          const behind = Object.fromEntries(names.filter((n) => (this.#known.get(n)?.seq ?? 0) < seq).map((n) => [n, this.#known.get(n)?.seq ?? null]))
          reject(new WharfError('WHARF_TIMEOUT', `read models did not reach seq ${seq} within ${timeoutMs} ms`, { details: { seq, behind } }))
        }, timeoutMs),
      }
      this.#waiters.add(waiter)
      for (const name of names) {
        let of = this.#waitersOf.get(name)
        if (!of) this.#waitersOf.set(name, (of = new Set()))
        of.add(waiter)
      }
      const signal = opts.signal
      if (signal) {
        const onAbort = () => {
          if (!this.#waiters.has(waiter)) return
          this.#finish(waiter)
          reject(new WharfError('WHARF_UNAVAILABLE', 'the wait was given up'))
        }
        signal.addEventListener('abort', onAbort, { once: true })
        // Taken off when the wait ends however it ends: a signal that outlives many waits (a consumer's,
        // for its whole life) would otherwise gather one listener per wait, and each add scans them all.
        waiter.detach = () => signal.removeEventListener('abort', onAbort)
      }
    })
    // The waiter may be settled while the LISTEN below is set up, before anyone awaits `done`.
    done.catch(() => {})
    try {
      const listening = this.#listener !== undefined
      await this.#listen()
      // Read after LISTEN is active: a change committed before it is in this read, any later one is
      // notified. While it stays active, what it was told is current: no read per wait (a command's),
      // except for a projection not seen yet and, at most once a second, to catch a status changed
      // without a notice.
      if (!listening || names.some((n) => !this.#known.has(n)) || performance.now() - this.#refreshedAt > REFRESH_MS) await this.#refresh(names)
      else this.#check()
    } catch (err) {
      this.#settleAll(new WharfError('WHARF_UNAVAILABLE', 'cannot read projection checkpoints', { cause: err }))
    }
    return done
  }

  /**
   * Waits for a read model to show something whose log sequence nobody knows in advance (the
   * release another service makes of a build): runs `probe` once listening, then again each time the
   * checkpoint of one of `projections` moves, and answers its first defined result. Undefined after
   * `timeoutMs` or once `signal` aborts; rejects when `probe` throws.
   */
  until<T>(probe: () => Promise<T | undefined>, opts: UntilOptions): Promise<T | undefined> {
    if (this.#closed) return Promise.reject(new WharfError('WHARF_UNAVAILABLE', 'checkpoint watcher is closed'))
    if (opts.signal?.aborted) return Promise.resolve(undefined)
    clearTimeout(this.#idleTimer)
    return new Promise<T | undefined>((resolve, reject) => {
      let settled = false
      let running = false
      let again = false
      const finish = (settle: () => void): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        opts.signal?.removeEventListener('abort', onAbort)
        this.#probers.delete(prober)
        this.#scheduleIdle()
        settle()
      }
      const run = async (): Promise<void> => {
        if (settled) return
        if (running) {
          again = true
          return
        }
        running = true
        try {
          do {
            again = false
            const value = await probe()
            if (value !== undefined) return finish(() => resolve(value))
          } while (again && !settled)
        } catch (err) {
          finish(() => reject(err))
        } finally {
          running = false
        }
      }
      const prober: Prober = { names: opts.projections, kick: () => void run(), fail: (err) => finish(() => reject(err)) }
      const onAbort = (): void => finish(() => resolve(undefined))
      const timer = setTimeout(() => finish(() => resolve(undefined)), opts.timeoutMs ?? 5_000)
      opts.signal?.addEventListener('abort', onAbort, { once: true })
      this.#probers.add(prober)
      // Probe after LISTEN is active: a change committed before it is in the probe's read, any later one is notified.
      this.#listen().then(
        () => prober.kick(),
        (err) => prober.fail(new WharfError('WHARF_UNAVAILABLE', 'cannot listen for projection checkpoints', { cause: err })),
      )
    })
  }

  /** Rejects every waiter and gives the LISTEN connection back. */
  async close(): Promise<void> {
    this.#closed = true
    this.#settleAll(new WharfError('WHARF_UNAVAILABLE', 'checkpoint watcher is closed'))
    await this.#unlisten()
  }

  async #refresh(names: readonly string[]): Promise<void> {
    this.#refreshedAt = performance.now()
    for (const row of await readCheckpoints(this.#pool, names)) this.#see({ name: row.name, seq: row.seq, status: row.status })
    this.#check()
  }

  #see(n: CheckpointNotice): void {
    const prev = this.#known.get(n.name)
    this.#known.set(n.name, { seq: n.reset ? n.seq : Math.max(prev?.seq ?? 0, n.seq), status: n.status })
  }

  /** Settles the waiters that are done, of the projection `name` only when given. */
  #check(name?: string): void {
    const waiters = name === undefined ? this.#waiters : this.#waitersOf.get(name)
    if (!waiters) return
    for (const w of waiters) {
      let reached = true
      for (const name of w.names) {
        const k = this.#known.get(name)
        if (k && k.seq >= w.seq) continue
        reached = false
        if (k?.status === 'failed') {
          this.#finish(w)
          w.reject(new WharfError('WHARF_UNAVAILABLE', `read model ${name} has failed at seq ${k.seq + 1}`, { details: { projection: name, seq: k.seq } }))
          break
        }
      }
      if (reached) {
        this.#finish(w)
        w.resolve()
      }
    }
  }

  #finish(w: Waiter): void {
    clearTimeout(w.timer)
    w.detach?.()
    this.#waiters.delete(w)
    for (const name of w.names) {
      const of = this.#waitersOf.get(name)
      of?.delete(w)
      if (of?.size === 0) this.#waitersOf.delete(name)
    }
    this.#scheduleIdle()
  }

  #settleAll(err: Error): void {
    for (const w of [...this.#waiters]) {
      this.#finish(w)
      w.reject(err)
    }
    for (const p of [...this.#probers]) p.fail(err)
  }

  #scheduleIdle(): void {
    if (this.#waiters.size > 0 || this.#probers.size > 0 || !this.#listener) return
    clearTimeout(this.#idleTimer)
    this.#idleTimer = setTimeout(() => void this.#unlisten(), this.#idleMs)
    this.#idleTimer.unref()
  }

  #listen(): Promise<pg.PoolClient> {
    this.#listener ??= (async () => {
      const client = await this.#pool.connect()
      // A client given back whole is pooled and may come back here: released once per lease.
      this.#released.delete(client)
      const onNotification = (msg: pg.Notification): void => {
        if (msg.channel !== CHECKPOINT_CHANNEL || !msg.payload) return
        const notice = JSON.parse(msg.payload) as CheckpointNotice
        this.#see(notice)
        this.#check(notice.name)
        for (const p of this.#probers) if (p.names.includes(notice.name)) p.kick()
      }
      const onError = (): void => {
        if (this.#released.has(client)) return
        // Notifications may have been lost: forget what was seen and listen anew for whoever waits.
        this.#listener = undefined
        this.#known.clear()
        this.#release(client, true)
        if ((this.#waiters.size > 0 || this.#probers.size > 0) && !this.#closed) {
          const names = [...new Set([...this.#waiters].flatMap((w) => w.names))]
          this.#listen()
            .then(() => {
              for (const p of this.#probers) p.kick()
              return this.#refresh(names)
            })
            .catch((err) => this.#settleAll(new WharfError('WHARF_UNAVAILABLE', 'lost the checkpoint listener', { cause: err })))
        }
      }
      client.on('notification', onNotification)
      client.on('error', onError)
      // Pooled again (released whole), the client serves others: these handlers must not follow it (the
      // pool listens for errors of idle clients). Destroyed, it keeps onError so a late error is not uncaught.
      this.#detach.set(client, (destroy) => {
        client.off('notification', onNotification)
        if (!destroy) client.off('error', onError)
      })
      try {
        await client.query(`LISTEN ${CHECKPOINT_CHANNEL}`)
      } catch (err) {
        this.#release(client, true)
        throw err
      }
      return client
    })()
    this.#listener.catch(() => (this.#listener = undefined))
    return this.#listener
  }

  async #unlisten(): Promise<void> {
    const listener = this.#listener
    if (!listener || this.#waiters.size > 0 || this.#probers.size > 0) return
    this.#listener = undefined
    this.#known.clear()
    const client = await listener.catch(() => undefined)
    if (!client) return
    try {
      await client.query(`UNLISTEN ${CHECKPOINT_CHANNEL}`)
      this.#release(client, false)
    } catch {
      this.#release(client, true)
    }
  }

  /**
   * Gives the listening client back once: its 'error' event, a failed LISTEN and an UNLISTEN after
   * the connection broke can each come to release it, and pg throws on a second release (which, from
   * an event handler, is an uncaught exception).
   */
  #release(client: pg.PoolClient, destroy: boolean): void {
    if (this.#released.has(client)) return
    this.#released.add(client)
    this.#detach.get(client)?.(destroy)
    client.release(destroy)
  }
}
