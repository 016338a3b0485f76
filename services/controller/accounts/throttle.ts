/**
 * Counts failures per key (a user name, a client address) in fixed one-minute windows. A key with
 * `limit` failures in its window is blocked until the window ends. Memory is bounded: at most
 * `maxKeys` keys are kept (the oldest windows go first).
 */
export class FailureThrottle {
  readonly #windows = new Map<string, { start: number; failures: number }>()
  readonly #limit: number
  readonly #windowMs: number
  readonly #maxKeys: number
  readonly #now: () => number

  constructor(opts: { limit: number; windowMs?: number; maxKeys?: number; now?: () => number }) {
    this.#limit = opts.limit
    this.#windowMs = opts.windowMs ?? 60_000
    this.#maxKeys = opts.maxKeys ?? 100_000
    this.#now = opts.now ?? Date.now
  }

  #window(key: string) {
    const w = this.#windows.get(key)
    if (w && this.#now() - w.start < this.#windowMs) return w
    if (w) this.#windows.delete(key)
    return undefined
  }

  /** Milliseconds until `key` may try again; 0 when it may now. */
  blockedFor(key: string): number {
    const w = this.#window(key)
    return w && w.failures >= this.#limit ? Math.max(1, w.start + this.#windowMs - this.#now()) : 0
  }

  fail(key: string): void {
    const w = this.#window(key)
    if (w) {
      w.failures++
      return
    }
    if (this.#windows.size >= this.#maxKeys) this.#windows.delete(this.#windows.keys().next().value!)
    this.#windows.set(key, { start: this.#now(), failures: 1 })
  }

  /** Forgets `key` (a successful sign-in clears its user's failures). */
  clear(key: string): void {
    this.#windows.delete(key)
  }
}
