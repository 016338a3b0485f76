/** Bounded exponential backoff for reconnecting to Postgres and NATS. */
export interface BackoffOptions {
  /** The first pause, ms, default 200. */
  baseMs?: number
  /** The longest pause, ms, default 5_000 (so a part that is back is used again within 5 s). */
  maxMs?: number
}

/**
 * The pause before try number `attempt` (0-based): `baseMs * 2^attempt`, at most `maxMs`, minus up
 * to a fifth at random so that many consumers do not all knock at once.
 */
export function backoffMs(attempt: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const base = opts.baseMs ?? 200
  const max = opts.maxMs ?? 5_000
  const full = Math.min(max, base * 2 ** Math.min(attempt, 30))
  return Math.round(full * (1 - random() * 0.2))
}
