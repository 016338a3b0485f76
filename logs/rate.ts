/**
 * A token bucket: `rate` tokens a second, at most `burst` saved. `take(n)` spends n and answers how
 * long (ms) the caller should wait before more (0 while the bucket had them): logspout pauses an app's
 * streams that long, the syslog receiver drops lines while it is not 0.
 */
export class TokenBucket {
  #tokens: number
  #at: number
  readonly #now: () => number

  constructor(
    readonly rate: number,
    readonly burst = rate,
    now: () => number = Date.now,
  ) {
    this.#now = now
    this.#tokens = burst
    this.#at = now()
  }

  #refill(): void {
    const t = this.#now()
    this.#tokens = Math.min(this.burst, this.#tokens + ((t - this.#at) * this.rate) / 1000)
    this.#at = t
  }

  /** Spends `n` (the balance may go below zero); answers the ms until it is back above zero. */
  take(n: number): number {
    this.#refill()
    this.#tokens -= n
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens * 1000) / this.rate)
  }

  /** Spends `n` only if the bucket has them. */
  tryTake(n = 1): boolean {
    this.#refill()
    if (this.#tokens < n) return false
    this.#tokens -= n
    return true
  }
}
