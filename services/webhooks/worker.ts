/**
 * One hook's deliveries: a durable consumer of the event log of its own (`hook-<id>`), so each hook
 * keeps its own place and a slow or dead subscriber holds up only itself. Events go one at a time, in
 * log order; a failed one is retried with exponential backoff (while it waits, the consumer is closed:
 * nothing is buffered, nothing is acked past it), and after the retry window the hook is disabled.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import type { Logger } from '../../core/log.js'
import type { OutboundPolicy } from '../../core/outbound.js'
import { runCommand } from '../../domain/command.js'
import { hookDecider, type HookCommand } from '../../domain/hook/decider.js'
import { MAX_ATTEMPTS_PER_EVENT, matchesPatterns, type HookAttempt } from '../../domain/index.js'
import { startConsumer, type Consumer } from '../../events/consumer.js'
import { streamId, type EventStore, type RecordedEvent } from '../../events/index.js'
import { canSeeApp, getUser, publicEvent, type HookTarget, visibleEvents } from '../../projections/index.js'
import { HookClient, type SendOptions } from './send.js'

/** How hooks deliver and retry; every duration is configurable so tests can use short ones. */
export interface WebhookOptions extends SendOptions {
  /** First pause after a failed attempt, ms, default 1_000; doubled each time up to `maxBackoffMs`. */
  minBackoffMs: number
  /** Longest pause between attempts, ms, default 3_600_000 (1 h). */
  maxBackoffMs: number
  /** How long a hook may keep failing before it is disabled, ms, default 3 days. */
  retryWindowMs: number
  /** Attempts are written to the log (`HookAttempts`) at most this often per hook, ms, default 2_000. */
  recordMs: number
  /** How long the owner's access is trusted before it is read again, ms, default 5_000. */
  accessCacheMs: number
}

export const DEFAULT_WEBHOOK_OPTIONS: WebhookOptions = {
  timeoutMs: 10_000,
  maxBodyBytes: 64 * 1024,
  minBackoffMs: 1_000,
  maxBackoffMs: 3_600_000,
  retryWindowMs: 3 * 24 * 3_600_000,
  recordMs: 2_000,
  accessCacheMs: 5_000,
}

export interface WorkerDeps {
  store: EventStore
  pool: pg.Pool
  log: Logger
  policy: OutboundPolicy
  opts: WebhookOptions
}

/** The durable consumer name of a hook. */
export function hookDurable(id: string): string {
  return `hook-${id}`
}

/** Thrown by the handler to leave the event unacked while the hook waits. */
class Parked extends Error {}

/** A hook's delivery loop. */
export class HookWorker {
  readonly target: HookTarget
  readonly #deps: WorkerDeps
  readonly #log: Logger
  readonly #client: HookClient
  readonly #stopper = new AbortController()
  #consumer: Consumer | undefined
  #loop: Promise<void> | undefined
  /** Resolves when the running consumer should be closed (a failure to wait out, a stop). */
  #park: (() => void) | undefined
  #retryAt = 0
  /** Set once the running consumer is to close: the handler then takes nothing more. */
  #parked = false
  #failures = 0
  #failingSince: number | undefined
  #disabled: boolean
  /** The newest event delivered: a redelivered duplicate (after an ack wait ran out) is skipped. */
  #last: { seq: number; ids: Set<string> } = { seq: 0, ids: new Set() }
  #attempts: HookAttempt[] = []
  #omitted = 0
  #flushTimer: NodeJS.Timeout | undefined
  #flushing: Promise<void> = Promise.resolve()
  #access: { ok: boolean; until: number } = { ok: false, until: 0 }

  constructor(target: HookTarget, deps: WorkerDeps) {
    this.target = target
    this.#deps = deps
    this.#log = deps.log.child({ hook: target.id })
    this.#client = new HookClient(target.url, target.secret, deps.policy, deps.opts)
    this.#disabled = target.disabled
  }

  /** Starts delivering (a disabled hook only answers redeliveries). */
  start(): void {
    if (!this.#disabled) this.#loop ??= this.#run()
  }

  /** Stops delivering; what is in hand is not acked and comes again on the next start. */
  async stop(): Promise<void> {
    this.#stopper.abort()
    this.#park?.()
    await this.#loop
    await this.#flush()
    await this.#client.close()
  }

  async #run(): Promise<void> {
    const signal = this.#stopper.signal
    while (!signal.aborted && !this.#disabled) {
      const wait = this.#retryAt - Date.now()
      if (wait > 0) await sleep(wait, undefined, { signal }).catch(() => {})
      if (signal.aborted) break
      this.#parked = false
      const parked = new Promise<void>((resolve) => (this.#park = resolve))
      try {
        this.#consumer = await startConsumer({
          store: this.#deps.store,
          durableName: hookDurable(this.target.id),
          from: this.target.addedSeq + 1,
          filter: (e) => this.#wants(e),
          handle: (e) => this.#handle(e),
          log: this.#log,
          name: `webhooks ${this.target.id}`,
        })
      } catch (err) {
        this.#log.error({ err }, 'webhooks: cannot follow the event log; trying again')
        this.#retryAt = Date.now() + this.#deps.opts.minBackoffMs
        continue
      }
      await parked
      await this.#consumer.stop()
      this.#consumer = undefined
    }
  }

  /** The events this hook gets: of its app (or all), of its types, never the hooks' own attempt records. */
  #wants(e: RecordedEvent): boolean {
    if (e.type === 'HookAttempts' || e.seq <= this.target.addedSeq) return false
    if (!matchesPatterns(this.target.events, e.type)) return false
    return this.target.app === null || publicEvent(e).app === this.target.app
  }

  /** Whether the owner may still read what the hook gets (the app, or everything for an admin). */
  async #allowed(): Promise<boolean> {
    if (Date.now() < this.#access.until) return this.#access.ok
    const { owner, app } = this.target
    const user = await getUser(this.#deps.pool, owner)
    const ok = user !== undefined && (user.admin || (app !== null && (await canSeeApp(this.#deps.pool, owner, app))))
    this.#access = { ok, until: Date.now() + this.#deps.opts.accessCacheMs }
    return ok
  }

  async #handle(e: RecordedEvent): Promise<void> {
    if (this.#stopper.signal.aborted || this.#disabled || this.#parked) {
      void this.#consumer?.stop()
      throw new Parked('stopping')
    }
    if (e.seq < this.#last.seq || (e.seq === this.#last.seq && this.#last.ids.has(e.id))) return
    if (!(await this.#allowed())) return
    const body = JSON.stringify(publicEvent(e))
    const res = await this.#client.send(e.id, body, this.#stopper.signal)
    this.#record({ delivery: e.id, seq: e.seq, type: e.type, at: new Date(Date.now() - res.durationMs).toISOString(), ...res })
    if (!res.error) {
      if (e.seq !== this.#last.seq) this.#last = { seq: e.seq, ids: new Set() }
      this.#last.ids.add(e.id)
      if (this.#failingSince !== undefined) {
        await this.#command({ type: 'RecordRecovered', id: this.target.id, delivery: e.id, seq: e.seq, failedAttempts: this.#failures })
      }
      this.#failures = 0
      this.#failingSince = undefined
      return
    }
    if (this.#stopper.signal.aborted) {
      void this.#consumer?.stop()
      throw new Parked('stopping')
    }
    this.#failures++
    const now = Date.now()
    this.#failingSince ??= now
    const { minBackoffMs, maxBackoffMs, retryWindowMs } = this.#deps.opts
    if (now - this.#failingSince >= retryWindowMs) {
      this.#disabled = true
      this.#log.warn({ failures: this.#failures, error: res.error }, 'webhooks: a hook failed for the whole retry window; disabled')
      await this.#command({
        type: 'DisableHook',
        id: this.target.id,
        reason: `every attempt failed for ${Math.round((now - this.#failingSince) / 1000)} s (${this.#failures} attempts); last: ${res.error}`,
        failingSince: new Date(this.#failingSince).toISOString(),
      })
    } else {
      const delay = Math.min(minBackoffMs * 2 ** Math.min(this.#failures - 1, 40), maxBackoffMs)
      this.#retryAt = now + delay
      if (this.#failures === 1) {
        this.#log.warn({ error: res.error, seq: e.seq }, 'webhooks: a hook does not take its deliveries; retrying with backoff')
        await this.#command({ type: 'RecordFailing', id: this.target.id, delivery: e.id, seq: e.seq, error: res.error, retryInMs: delay })
      }
    }
    // Stopping the consumer from here (not awaited: it waits for this handler) leaves the event unacked.
    this.#parked = true
    void this.#consumer?.stop()
    this.#park?.()
    throw new Parked('waiting to retry')
  }

  /** Sends one past delivery again, now, beside the hook's queue; the attempt is recorded with `request`. */
  async redeliver(delivery: string, seq: number, request: string): Promise<void> {
    const [event] = (await visibleEvents(this.#deps.pool, { username: '', admin: true }, { after: seq - 1, upTo: seq, limit: 100 })).filter(
      (e) => e.id === delivery,
    )
    let attempt: HookAttempt
    if (!event) {
      attempt = { delivery, seq, type: 'unknown', at: new Date().toISOString(), status: 0, durationMs: 0, error: 'the event is not in the log', request }
    } else {
      const res = await this.#client.send(event.id, JSON.stringify(event), this.#stopper.signal)
      attempt = { delivery, seq, type: event.type, at: new Date(Date.now() - res.durationMs).toISOString(), ...res, request }
    }
    this.#record(attempt)
    await this.#flush()
  }

  /** Keeps an attempt for the next `HookAttempts` (bounded: the oldest are counted, not kept). */
  #record(a: HookAttempt): void {
    this.#attempts.push(a)
    if (this.#attempts.length > MAX_ATTEMPTS_PER_EVENT) {
      this.#attempts.shift()
      this.#omitted++
    }
    this.#flushTimer ??= setTimeout(() => void this.#flush(), this.#deps.opts.recordMs)
  }

  #flush(): Promise<void> {
    clearTimeout(this.#flushTimer)
    this.#flushTimer = undefined
    this.#flushing = this.#flushing.then(async () => {
      if (this.#attempts.length === 0) return
      const attempts = this.#attempts
      const omitted = this.#omitted
      this.#attempts = []
      this.#omitted = 0
      try {
        await this.#command({ type: 'RecordAttempts', id: this.target.id, attempts, omitted })
      } catch (err) {
        this.#log.warn({ err }, 'webhooks: cannot record delivery attempts; keeping them for the next time')
        this.#attempts = [...attempts, ...this.#attempts].slice(-MAX_ATTEMPTS_PER_EVENT)
        this.#omitted += omitted
        this.#flushTimer ??= setTimeout(() => void this.#flush(), this.#deps.opts.recordMs)
      }
    })
    return this.#flushing
  }

  async #command(command: HookCommand): Promise<void> {
    await runCommand(this.#deps, {
      stream: streamId('hook', this.target.id),
      decider: hookDecider,
      command,
      ctx: { actor: 'system:webhooks', correlationId: `hook-${this.target.id}` },
      waitFor: [],
    })
  }
}
