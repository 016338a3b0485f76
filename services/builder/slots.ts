import { WharfError } from '../../core/errors.js'

/**
 * Counts the pushes a builder runs: at most `perUser` for one user and `max` for everyone. A push
 * over either bound is refused at once with `WHARF_BUSY` and a message that says which bound and
 * what to do, rather than queued (a queued push would hold its SSH connection and say nothing).
 */
export class PushSlots {
  readonly #byUser = new Map<string, number>()
  #total = 0

  readonly #bounds: { perUser: number; max: number }

  constructor(bounds: { perUser: number; max: number }) {
    this.#bounds = bounds
  }

  /** Takes a slot for `username`; answers the function that gives it back (idempotent). Throws `WHARF_BUSY` over a bound. */
  take(username: string): () => void {
    const mine = this.#byUser.get(username) ?? 0
    if (mine >= this.#bounds.perUser)
      throw new WharfError(
        'WHARF_BUSY',
        `${username} has ${mine} pushes running already, the most one user may run at once (WHARF_PUSHES_PER_USER=${this.#bounds.perUser}); push again when one has finished`,
      )
    if (this.#total >= this.#bounds.max)
      throw new WharfError(
        'WHARF_BUSY',
        `the builder runs ${this.#total} pushes already, its most at once (WHARF_PUSHES_MAX=${this.#bounds.max}); push again in a moment`,
      )
    this.#byUser.set(username, mine + 1)
    this.#total++
    let given = false
    return () => {
      if (given) return
      given = true
      this.#total--
      const left = (this.#byUser.get(username) ?? 1) - 1
      if (left > 0) this.#byUser.set(username, left)
      else this.#byUser.delete(username)
    }
  }

  /** Pushes running now: all, and of `username`. */
  running(username?: string): number {
    return username === undefined ? this.#total : (this.#byUser.get(username) ?? 0)
  }
}

/** The timer functions {@link IdleTimer} uses: the global ones, or a test's own clock. */
export interface Timers {
  set(fn: () => void, ms: number): unknown
  clear(handle: unknown): void
}

const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms).unref(),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
}

/**
 * Closes a connection its client keeps silent: `touch()` on every byte either way; `pause()` while
 * the server works for the client (the build), `resume()` after. `onIdle` runs once.
 */
export class IdleTimer {
  #timer: unknown
  #paused = 0
  #fired = false

  readonly #ms: number
  readonly #onIdle: () => void
  readonly #timers: Timers

  constructor(ms: number, onIdle: () => void, timers: Timers = realTimers) {
    this.#ms = ms
    this.#onIdle = onIdle
    this.#timers = timers
    this.touch()
  }

  touch(): void {
    if (this.#fired || this.#paused > 0) return
    this.#timers.clear(this.#timer)
    this.#timer = this.#timers.set(() => {
      this.#fired = true
      this.#onIdle()
    }, this.#ms)
  }

  pause(): void {
    this.#paused++
    this.#timers.clear(this.#timer)
  }

  resume(): void {
    this.#paused = Math.max(0, this.#paused - 1)
    this.touch()
  }

  stop(): void {
    this.#fired = true
    this.#timers.clear(this.#timer)
  }
}
