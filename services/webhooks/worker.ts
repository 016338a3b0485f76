/**
 * One hook's deliveries: a durable consumer of the event log of its own (`hook-<id>`), so each hook
 * keeps its own place and a slow or dead subscriber holds up only itself. Events go one at a time, in
 * log order; a failed one is retried with exponential backoff (while it waits, the consumer is closed:
 * nothing is buffered, nothing is acked past it), and after the retry window the hook is disabled.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { webhookDeliveries, webhookDuration } from '../../core/metrics.js'
import type pg from 'pg'
import type { Logger } from '../../core/log.js'
import type { OutboundPolicy } from '../../core/outbound.js'
import { runCommand } from '../../domain/command.js'
import { hookDecider, type HookCommand } from '../../domain/hook/decider.js'
import { MAX_ATTEMPTS_PER_EVENT, matchesPatterns, type HookAttempt } from '../../domain/index.js'
import { startConsumer, type Consumer } from '../../events/consumer.js'
import { streamId, type EventStore, type RecordedEvent } from '../../events/index.js'
import { appOf, canSeeApp, getUser, publicEvent, type HookTarget, visibleEvents } from '../../projections/index.js'
import { HookClient, type SendOptions } from './send.js'

/** How hooks deliver and retry; every duration is configurable so tests can use short ones. */
export interface WebhookOptions extends SendOptions {
  /** First pause after a failed attempt, ms, default 1_000; doubled each time up to `maxBackoffMs`. */
  minBackoffMs: number
  /** Longest pause between attempts, ms, default 3_600_000 (1 h). */
  maxBackoffMs: number
  /** How long a hook may keep failing before it is disabled, ms, default 3 days. */
  retryWindowMs: number
  /** Attempts are written to the log (`HookAttempts`) at most this often per hook, ms, default 5_000. */
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
  recordMs: 5_000,
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

/** What a hook sees of the webhooks service's shared read of the log. */
export interface Tail {
  /**
   * The events the tail handed out after `e`, in order: [] when it will hand out everything after `e`
   * itself; undefined when it no longer holds them all (the hook is not caught up).
   */
  since(e: RecordedEvent): RecordedEvent[] | undefined
}

/** Thrown by the handler to leave the event unacked while the hook waits. */
class Parked extends Error {}

/** Events a live hook holds while its subscriber takes them; past it, the hook reads the log on its own (catch-up). */
export const LIVE_QUEUE = 256
/** How often a live hook writes its position to its durable consumer, ms. */
const PERSIST_MS = 60_000

/**
 * A hook's delivery loop, in one of two modes:
 * - catch-up: its own durable consumer (`hook-<id>`) reads the log from the hook's position, one
 *   event at a time; once it reaches the webhooks service's shared tail, the consumer is closed (its
 *   ack floor is the hook's position) and the hook goes live;
 * - live: the shared tail (one read of the log for every hook) hands it the events it wants, into a
 *   bounded queue. A failure, or a queue that overflows (a slow subscriber), sends it back to
 *   catch-up from the last event it delivered, so nothing is skipped and nothing waits in memory.
 * The durable consumer's position is brought up to date when the hook leaves live mode, when it
 * stops, and every minute while live; after a crash the hook resends from there (at least once).
 */
export class HookWorker {
  readonly target: HookTarget
  readonly #deps: WorkerDeps
  readonly #log: Logger
  readonly #client: HookClient
  readonly #stopper = new AbortController()
  /** The shared tail: a hook in catch-up that comes within its recent events goes live. */
  readonly #tail: Tail
  #consumer: Consumer | undefined
  /** The close of the consumer the hook left when it went live. */
  #closing: Promise<void> = Promise.resolve()
  #loop: Promise<void> | undefined
  /** Resolves when the running consumer should be closed (a failure to wait out, going live, a stop). */
  #park: (() => void) | undefined
  /** Set once the running consumer is to close: the handler then takes nothing more. */
  #parked = false
  #mode: 'catchup' | 'live' = 'catchup'
  /** The durable consumer is behind the hook's position (it delivered live since). */
  #durableStale = false
  #persisting: Promise<void> = Promise.resolve()
  #persistedAt = 0
  #queue: RecordedEvent[] = []
  #overflow = false
  #wake: (() => void) | undefined
  /** The newest seq the tail offered while live (wanted or not), and whether a delivery is in hand. */
  #offered = 0
  #busy = false
  #retryAt = 0
  #failures = 0
  #failingSince: number | undefined
  #disabled: boolean
  /** The newest event handled (delivered, or not for this hook): a repeated one is skipped. */
  #done: { seq: number; ids: Set<string> }
  #attempts: HookAttempt[] = []
  #omitted = 0
  #flushTimer: NodeJS.Timeout | undefined
  #flushing: Promise<void> = Promise.resolve()
  #access: { ok: boolean; until: number } = { ok: false, until: 0 }
  #refreshing: Promise<unknown> | undefined

  constructor(target: HookTarget, deps: WorkerDeps & { tail?: Tail }) {
    this.target = target
    this.#deps = deps
    this.#log = deps.log.child({ hook: target.id })
    this.#client = new HookClient(target.url, target.secret, deps.policy, deps.opts)
    this.#disabled = target.disabled
    this.#tail = deps.tail ?? { since: () => undefined }
    this.#done = { seq: target.addedSeq, ids: new Set() }
  }

  /** Starts delivering (a disabled hook only answers redeliveries). */
  start(): void {
    if (!this.#disabled) this.#loop ??= this.#run()
  }

  /** Stops delivering; what is in hand is not acked and comes again on the next start. */
  async stop(): Promise<void> {
    this.#stopper.abort()
    this.#park?.()
    this.#wake?.()
    await this.#loop
    await this.#persist()
    await this.#flush()
    await this.#client.close()
  }

  /** From the shared tail, every event in log order: a live hook queues those it wants. */
  offer(e: RecordedEvent): void {
    if (this.#mode !== 'live' || this.#overflow || this.#seen(e)) return
    this.#offered = e.seq
    this.#durableStale = true
    if (!this.#wants(e) && !this.#ends(e)) return
    if (this.#queue.length >= LIVE_QUEUE) {
      // A subscriber slower than the log: it reads on its own from where it is, nothing is kept here.
      this.#overflow = true
      this.#queue = []
    } else this.#queue.push(e)
    this.#wake?.()
  }

  /** The seq the hook reads from next: that of the newest event delivered, or of the newest the tail offered when nothing waits. */
  #position(): number {
    const idle = this.#mode === 'live' && !this.#busy && this.#queue.length === 0 && !this.#overflow
    // Not the seq after: the events of one commit share a seq, and those of it not yet handled must come again
    // (the ones handled are skipped here; after a restart they may be sent once more, as at least once allows).
    return Math.max(this.#done.seq, idle ? this.#offered : 0, this.target.addedSeq + 1)
  }

  /**
   * Moves the durable consumer to the hook's position (a consumer made anew there), when it is behind.
   * One at a time; a live hook runs it beside its deliveries (what it delivers meanwhile marks it behind again).
   */
  #persist(): Promise<void> {
    this.#persisting = this.#persisting.then(async () => {
      await this.#closing
      if (!this.#durableStale) return
      const durable = hookDurable(this.target.id)
      this.#durableStale = false
      try {
        const from = this.#position()
        await this.#deps.store.deleteSubscription(durable)
        await (await this.#deps.store.subscribe(durable, { fromSeq: from })).close()
        this.#persistedAt = Date.now()
      } catch (err) {
        this.#durableStale = true
        this.#log.warn({ err }, 'webhooks: cannot save the position of a hook; after a restart it sends again from an older one')
      }
    })
    return this.#persisting
  }

  async #run(): Promise<void> {
    const signal = this.#stopper.signal
    while (!signal.aborted && !this.#disabled) {
      const wait = this.#retryAt - Date.now()
      if (wait > 0) await sleep(wait, undefined, { signal }).catch(() => {})
      if (signal.aborted) break
      if (this.#mode === 'live') {
        await this.#live(signal)
        continue
      }
      await this.#persist()
      this.#parked = false
      const parked = new Promise<void>((resolve) => (this.#park = resolve))
      try {
        this.#consumer = await startConsumer({
          store: this.#deps.store,
          durableName: hookDurable(this.target.id),
          from: this.#position(),
          handle: (e) => this.#catchUp(e),
          log: this.#log,
          name: `webhooks ${this.target.id}`,
          // A subscriber that is down delays its own deliveries, not the platform's health.
          health: null,
        })
      } catch (err) {
        this.#log.error({ err }, 'webhooks: cannot follow the event log; trying again')
        this.#retryAt = Date.now() + this.#deps.opts.minBackoffMs
        continue
      }
      await parked
      // A connection lost meanwhile only means the next start recreates the consumer from its last ack.
      const closing = this.#consumer.stop().catch((err) => this.#log.warn({ err }, 'webhooks: the consumer did not close cleanly'))
      this.#consumer = undefined
      // Going live does not wait for the close (it confirms the last ack with the server): the tail's events go out meanwhile.
      if (this.#isLive()) this.#closing = closing
      else await closing
    }
  }

  #isLive(): boolean {
    return this.#mode === 'live'
  }

  /** Live: delivers what the tail queued, until a failure or an overflow sends the hook back to catch-up. */
  async #live(signal: AbortSignal): Promise<void> {
    // The durable consumer was closed right here: it is up to date until the first live delivery.
    this.#durableStale = true
    this.#persistedAt = Date.now()
    // Spread over time, so that a hundred hooks that went live together do not all save at once.
    const every = PERSIST_MS * (1 + Math.random())
    while (!signal.aborted && !this.#disabled) {
      if (this.#overflow) break
      const e = this.#queue.shift()
      if (!e) {
        if (Date.now() - this.#persistedAt > every) {
          this.#persistedAt = Date.now()
          void this.#persist()
        }
        await new Promise<void>((resolve) => (this.#wake = resolve))
        this.#wake = undefined
        continue
      }
      this.#busy = true
      const ok = await this.#take(e).finally(() => (this.#busy = false))
      if (!ok) break
    }
    this.#mode = 'catchup'
    this.#queue = []
    this.#overflow = false
  }

  /** Catch-up: every event of the log from the hook's position, from its own durable consumer. */
  async #catchUp(e: RecordedEvent): Promise<void> {
    if (this.#stopper.signal.aborted || this.#disabled || this.#parked) {
      void this.#consumer?.stop().catch(() => {})
      throw new Parked('stopping')
    }
    if (!this.#seen(e)) {
      if (this.#wants(e) || this.#ends(e)) {
        if (!(await this.#take(e))) {
          this.#parked = true
          // Stopping the consumer from here (not awaited: it waits for this handler) leaves the event unacked.
          void this.#consumer?.stop().catch(() => {})
          this.#park?.()
          throw new Parked('waiting to retry')
        }
      } else this.#handled(e)
    }
    if (this.#disabled) {
      this.#parked = true
      void this.#consumer?.stop().catch(() => {})
      this.#park?.()
      return
    }
    const backlog = this.#tail.since(e)
    if (backlog) {
      // Caught up with the shared tail: this event is acked (the consumer's position is the hook's), the tail's
      // recent events after it are queued, and the tail takes over.
      this.#mode = 'live'
      this.#offered = e.seq
      for (const b of backlog) this.offer(b)
      this.#parked = true
      void this.#consumer?.stop().catch(() => {})
      this.#park?.()
    }
  }

  /** The events this hook gets: of its app (or all), of its types, never the hooks' own attempt records. */
  #wants(e: RecordedEvent): boolean {
    if (e.type === 'HookAttempts' || e.seq <= this.target.addedSeq) return false
    if (!matchesPatterns(this.target.events, e.type)) return false
    return this.target.app === null || appOf(e) === this.target.app
  }

  /** Whether `e` ends an app hook: its app's `AppDestroyed` (an app made later under the name is another app). */
  #ends(e: RecordedEvent): boolean {
    return this.target.app !== null && e.type === 'AppDestroyed' && appOf(e) === this.target.app
  }

  /** Delivers `e` if the hook wants it; after its app's end, the hook sends nothing more. False: the delivery failed. */
  async #take(e: RecordedEvent): Promise<boolean> {
    if (this.#wants(e)) {
      if (!(await this.#deliver(e))) return false
    } else this.#handled(e)
    if (this.#ends(e)) {
      this.#disabled = true
      this.#log.info('webhooks: the app of a hook was destroyed; the hook sends nothing more')
    }
    return true
  }

  #seen(e: RecordedEvent): boolean {
    return e.seq < this.#done.seq || (e.seq === this.#done.seq && this.#done.ids.has(e.id))
  }

  #handled(e: RecordedEvent): void {
    if (e.seq !== this.#done.seq) this.#done = { seq: e.seq, ids: new Set() }
    this.#done.ids.add(e.id)
    if (this.#mode === 'live') this.#durableStale = true
  }

  /**
   * Whether the owner may still read what the hook gets (the app, or everything for an admin). Read
   * at most every `accessCacheMs` (with jitter, so hooks do not all ask at once); an answer that is
   * out of date serves while the new one is read, so a delivery never waits on the database but the
   * first (and every one when `accessCacheMs` is 0).
   */
  async #allowed(): Promise<boolean> {
    const cacheMs = this.#deps.opts.accessCacheMs
    if (cacheMs > 0 && Date.now() < this.#access.until) return this.#access.ok
    if (cacheMs > 0 && this.#access.until > 0) {
      this.#refreshing ??= this.#readAccess()
        .catch((err) => this.#log.warn({ err }, 'webhooks: cannot read the access of a hook owner; keeping the last answer'))
        .finally(() => (this.#refreshing = undefined))
      return this.#access.ok
    }
    return this.#readAccess()
  }

  async #readAccess(): Promise<boolean> {
    const { owner, app } = this.target
    const user = await getUser(this.#deps.pool, owner)
    const ok = user !== undefined && (user.admin || (app !== null && (await canSeeApp(this.#deps.pool, owner, app))))
    this.#access = { ok, until: Date.now() + this.#deps.opts.accessCacheMs * (0.5 + Math.random()) }
    return ok
  }

  /**
   * One attempt at `e`: true when it was delivered (or the owner may no longer see it), false when it
   * failed: the retry time is set, the failure recorded, and past the retry window the hook disabled.
   */
  async #deliver(e: RecordedEvent): Promise<boolean> {
    if (!(await this.#allowed())) {
      this.#handled(e)
      return true
    }
    const body = JSON.stringify(publicEvent(e))
    const res = await this.#client.send(e.id, body, this.#stopper.signal)
    this.#record({ delivery: e.id, seq: e.seq, type: e.type, at: new Date(Date.now() - res.durationMs).toISOString(), ...res })
    if (!res.error) {
      this.#handled(e)
      if (this.#failingSince !== undefined) {
        await this.#command({ type: 'RecordRecovered', id: this.target.id, delivery: e.id, seq: e.seq, failedAttempts: this.#failures })
      }
      this.#failures = 0
      this.#failingSince = undefined
      return true
    }
    if (this.#stopper.signal.aborted) return false
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
    return false
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
    const outcome = a.status >= 200 && a.status < 300 && !a.error ? 'ok' : 'failed'
    webhookDeliveries.inc({ outcome })
    webhookDuration.observe({ outcome }, a.durationMs / 1000)
    this.#attempts.push(a)
    if (this.#attempts.length > MAX_ATTEMPTS_PER_EVENT) {
      this.#attempts.shift()
      this.#omitted++
    }
    // Spread: a hundred hooks that deliver together do not all write at once.
    this.#flushTimer ??= setTimeout(() => void this.#flush(), this.#deps.opts.recordMs * (0.5 + Math.random()))
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

  /** Records an outcome on the hook's stream; a failure to write is logged (the deliveries go on). */
  async #command(command: HookCommand): Promise<void> {
    try {
      await runCommand(this.#deps, {
        stream: streamId('hook', this.target.id),
        decider: hookDecider,
        command,
        ctx: { actor: 'system:webhooks', correlationId: `hook-${this.target.id}` },
        waitFor: [],
      })
    } catch (err) {
      this.#log.error({ err, command: command.type }, 'webhooks: cannot record an outcome of a hook')
      if (command.type === 'RecordAttempts') throw err
    }
  }
}
