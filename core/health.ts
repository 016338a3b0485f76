/**
 * Where each consumer of the event log and of Postgres in this process stands, for `/healthz` and
 * `admin:status`: running, reconnecting (its connection broke; it tries again with bounded exponential
 * backoff) or stopped with an error, its position in the log and when it last made progress. The
 * verdict is unhealthy while any consumer is stopped or reconnecting, stuck (behind without progress
 * for `stallS`), or further behind the log's head than a threshold, with the reason in one line.
 */

export type ConsumerState = 'running' | 'reconnecting' | 'stopped'

export interface ConsumerReport {
  name: string
  state: ConsumerState
  /** The last error, for a consumer reconnecting, retrying or stopped. */
  error?: string
  /** The seq of the last commit handled (undefined until it handled one). */
  position?: number
  /** Events behind the log's head (0 when caught up); undefined when the head or the position is unknown. */
  lag?: number
  /** Seconds since the consumer last made progress (or changed state). */
  sinceProgressS: number
  /** Seconds the oldest event it has not handled has been in the log (when behind and known). */
  behindS?: number
  /** Reconnections since it started. */
  reconnects: number
}

export interface HealthThresholds {
  /** Events behind the head that make the platform unhealthy however fresh the progress, default 1000. */
  maxLag: number
  /** Seconds a consumer may be behind without progress before it counts as stuck, default 10. */
  stallS: number
}

export const DEFAULT_THRESHOLDS: HealthThresholds = { maxLag: 1000, stallS: 10 }

interface Entry {
  state: ConsumerState
  error?: string
  position?: number
  progressAt: number
  reconnects: number
}

/** The consumers of one process. Cheap to call on every event: no I/O, no allocation on the hot path. */
export class ConsumerHealth {
  readonly #entries = new Map<string, Entry>()
  readonly #now: () => number

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  /** Starts tracking `name` (again) as running; `position` when it is known. Reconnections so far are kept. */
  register(name: string, position?: number): void {
    const e: Entry = { state: 'running', progressAt: this.#now(), reconnects: this.#entries.get(name)?.reconnects ?? 0 }
    if (position !== undefined) e.position = position
    this.#entries.set(name, e)
  }

  /** Forgets `name`: it was stopped on purpose (a clean stop is not a failure). */
  remove(name: string): void {
    this.#entries.delete(name)
  }

  /** The consumer handled the commit at `seq` (or saw the log up to it). */
  progress(name: string, seq: number): void {
    const e = this.#entries.get(name)
    if (!e) return
    if (e.position === undefined || seq > e.position) e.position = seq
    e.progressAt = this.#now()
    if (e.state !== 'running') e.state = 'running'
    e.error = undefined
  }

  /** Connected again; its position is where it was. */
  resumed(name: string): void {
    const e = this.#entries.get(name)
    if (!e) return
    e.state = 'running'
    e.error = undefined
    e.progressAt = this.#now()
  }

  /** A delivery of `seq` arrived: everything before it is behind the consumer. */
  saw(name: string, seq: number): void {
    const e = this.#entries.get(name)
    if (!e) return
    if (e.position === undefined || seq - 1 > e.position) {
      e.position = seq - 1
      e.progressAt = this.#now()
    }
  }

  /** Handling failed and is retried; the consumer stays running, and counts as stuck once it stalls. */
  failing(name: string, err: unknown): void {
    const e = this.#entries.get(name)
    if (e) e.error = message(err)
  }

  /** Its connection broke; it is trying again. */
  reconnecting(name: string, err: unknown): void {
    const e = this.#entries.get(name)
    if (!e) return
    if (e.state !== 'reconnecting') {
      e.state = 'reconnecting'
      e.progressAt = this.#now()
      e.reconnects++
    }
    e.error = message(err)
  }

  /** It gave up, or failed for good (an event it cannot apply). */
  stopped(name: string, err: unknown): void {
    const e = this.#entries.get(name)
    if (!e) return
    e.state = 'stopped'
    e.error = message(err)
    e.progressAt = this.#now()
  }

  /**
   * Every consumer, by name, with its lag against `head` (the log's last seq) when known; `waitedS`
   * tells how long the event after a position has been in the log, seconds.
   */
  report(head?: number, waitedS?: ReadonlyMap<number, number>): ConsumerReport[] {
    const now = this.#now()
    return [...this.#entries]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, e]) => {
        const r: ConsumerReport = { name, state: e.state, sinceProgressS: Math.round((now - e.progressAt) / 100) / 10, reconnects: e.reconnects }
        if (e.error) r.error = e.error
        if (e.position !== undefined) r.position = e.position
        if (head !== undefined && e.position !== undefined) r.lag = Math.max(0, head - e.position)
        const waited = r.lag && e.position !== undefined ? waitedS?.get(e.position) : undefined
        if (waited !== undefined) r.behindS = waited
        return r
      })
  }

  /** Positions (of consumers behind `head`) whose next event's age tells whether they are stuck. */
  positionsBehind(head: number): number[] {
    return [...new Set([...this.#entries.values()].flatMap((e) => (e.position !== undefined && e.position < head ? [e.position] : [])))]
  }

  /** Healthy or not, and why not in one line (the first reasons, then how many more). */
  verdict(
    head?: number,
    t: HealthThresholds = DEFAULT_THRESHOLDS,
    waitedS?: ReadonlyMap<number, number>,
  ): { ok: boolean; reason?: string; consumers: ConsumerReport[] } {
    const consumers = this.report(head, waitedS)
    const reasons = consumers.flatMap((c) => {
      const why = problem(c, t)
      return why ? [`${c.name} ${why}`] : []
    })
    if (reasons.length === 0) return { ok: true, consumers }
    const shown = reasons.slice(0, 3).join('; ')
    return { ok: false, reason: reasons.length > 3 ? `${shown}; and ${reasons.length - 3} more` : shown, consumers }
  }
}

/** Why one consumer makes the platform unhealthy, or undefined. */
export function problem(c: ConsumerReport, t: HealthThresholds = DEFAULT_THRESHOLDS): string | undefined {
  if (c.state === 'stopped') return `stopped: ${c.error ?? 'no error recorded'}`
  if (c.state === 'reconnecting') return `reconnecting for ${c.sinceProgressS} s: ${c.error ?? ''}`.trimEnd()
  if (c.lag !== undefined && c.lag > t.maxLag) return `${c.lag} events behind`
  // Stuck: behind, no progress for stallS, and the event it waits on is that old too (an event appended
  // a moment ago to a consumer idle for an hour is not a stall).
  if (c.lag !== undefined && c.lag > 0 && c.sinceProgressS >= t.stallS && (c.behindS === undefined || c.behindS >= t.stallS))
    return `stuck ${c.lag} events behind for ${c.sinceProgressS} s${c.error ? `: ${c.error}` : ''}`
  return undefined
}

function message(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err)
  // One line, bounded: it ends up in a health answer.
  return text.replace(/\s+/g, ' ').slice(0, 300)
}

/** The consumers of this process: the event consumers and the projector register here. */
export const consumers = new ConsumerHealth()
