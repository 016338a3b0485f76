/**
 * The logger: keeps each app's recent lines (read from the whole log stream on start, then live),
 * answers the controller's requests for them and for history (archives and stream), writes platform
 * events into apps' logs (`[wharf] ...`), receives syslog, delivers to drains, and archives each
 * finished hour to the store.
 */
import type { Msg, Subscription as NatsSubscription } from '@nats-io/transport-node'
import type pg from 'pg'
import { isWharfError } from '../../core/errors.js'
import type { Logger } from '../../core/log.js'
import { appLabel, logLinesIn } from '../../core/metrics.js'
import type { ObjectStore } from '../../core/objectstore/index.js'
import { isWharfEvent } from '../../domain/index.js'
import { startConsumer, type Consumer } from '../../events/consumer.js'
import type { EventStore } from '../../events/index.js'
import {
  chunksOf,
  linesOf,
  MAX_REQUEST_LINES,
  mergeLines,
  type HistoryRequest,
  type LiveFeed,
  type DurableFeed,
  type LogLine,
  type LogStream,
  type RecentRequest,
  logInputToken,
} from '../../logs/index.js'
import { allDrains, liveApps, waitFor } from '../../projections/index.js'
import { Archiver } from './archive.js'
import { Drains, type DrainOptions } from './drains.js'
import { platformLine, ProcessNumbers } from './platform.js'
import { LogRings } from './ring.js'
import { SyslogServer } from './syslog-server.js'

export interface LogServerOptions {
  logs: LogStream
  /** The event log: platform events become lines. */
  store: EventStore
  /** The apps and drains read models. */
  pool: pg.Pool
  log: Logger
  /** Lines kept per app. */
  appLines: number
  /** Lines a second per app at the syslog receiver. */
  appRate: number
  /** Where the syslog receiver listens; undefined: none. */
  syslog?: { host: string; port: number }
  /** The secret the apps' log-input tokens derive from (`WHARF_LOG_INPUT_SECRET`); undefined: the receiver files no line. */
  inputSecret?: string | undefined
  /** The store's logs bucket; undefined: no archives. */
  objects?: ObjectStore
  /** How long the stream keeps lines, ms. */
  retentionMs: number
  drains?: DrainOptions
  /** Durable names (a benchmark's logger takes its own), default `logger-events` and `logger-drains`. */
  durables?: { events: string; drains: string }
  /** How often finished hours are archived, ms, default 30_000. */
  archiveEveryMs?: number
  /** How often the drains are read again from the read model, ms, default 30_000. */
  drainsEveryMs?: number
}

export class LogServer {
  readonly rings: LogRings
  readonly drains: Drains
  readonly archiver: Archiver | undefined
  syslog: SyslogServer | undefined
  /** The stream sequence the recent lines go up to. */
  seq = 0
  readonly stats = { batches: 0, lines: 0, platformLines: 0 }
  /** The live apps -> when their incarnation was created, and its log-input token (undefined without a secret). */
  readonly #apps = new Map<string, { created: string; token: string | undefined }>()
  /** Destroyed apps -> the last log-stream seq their purge covered (until the name is created again). */
  readonly #purged = new Map<string, number>()
  /** Apps the events destroyed (until the name is created again): a lagging read model does not bring them back. */
  readonly #destroyed = new Set<string>()
  readonly #numbers = new ProcessNumbers()
  #feed: LiveFeed | undefined
  #drainFeed: DurableFeed | undefined
  #events: Consumer | undefined
  #subs: NatsSubscription[] = []
  #loops: Promise<void>[] = []
  #timers: NodeJS.Timeout[] = []
  #stopping = false
  #replayed!: Promise<void>

  readonly #opts: LogServerOptions

  private constructor(opts: LogServerOptions) {
    this.#opts = opts
    this.rings = new LogRings(opts.appLines)
    this.drains = new Drains(opts.drains ?? {}, opts.log)
    this.archiver = opts.objects ? new Archiver({ objects: opts.objects, logs: opts.logs, log: opts.log, retentionMs: opts.retentionMs }) : undefined
  }

  static async start(opts: LogServerOptions): Promise<LogServer> {
    const s = new LogServer(opts)
    await s.#start()
    return s
  }

  get log(): Logger {
    return this.#opts.log
  }

  async #start(): Promise<void> {
    const { logs, store, log } = this.#opts
    await this.#loadApps()
    await this.#loadDrains()
    // The whole stream, then live: the recent lines of every app, and the archive's index.
    const until = await logs.lastSeq()
    let replayed!: () => void
    this.#replayed = new Promise<void>((r) => (until === 0 ? r() : (replayed = r)))
    this.#feed = await logs.follow(logs.subjects.all, { fromSeq: 1 })
    this.#loop('lines', async () => {
      for await (const b of this.#feed!) {
        const lines = linesOf(b.batch, b.seq)
        if (b.seq > (this.#purged.get(b.batch.app) ?? 0)) this.rings.add(b.batch.app, lines)
        this.archiver?.note(b.batch.app, lines, b.seq)
        this.seq = b.seq
        this.stats.batches++
        this.stats.lines += lines.length
        if (b.seq > until) logLinesIn.inc({ app: appLabel.of(b.batch.app), source: b.batch.source }, lines.length)
        if (b.seq >= until) replayed?.()
      }
    })
    this.#subs.push(
      logs.nc.subscribe(logs.subjects.requests.recent, {
        queue: 'logger',
        callback: (err, m) => void (err || this.#answer(m, (r) => this.#recent(r as RecentRequest))),
      }),
    )
    this.#subs.push(
      logs.nc.subscribe(logs.subjects.requests.history, {
        queue: 'logger',
        callback: (err, m) => void (err || this.#answer(m, (r) => this.#history(r as HistoryRequest))),
      }),
    )

    const durables = this.#opts.durables ?? { events: 'logger-events', drains: 'logger-drains' }
    this.#events = await startConsumer({ store, durableName: durables.events, from: 'end', log, name: 'logger', handle: (e) => this.#onEvent(e) })
    this.#drainFeed = await logs.subscribe(durables.drains)
    this.#loop('drains', async () => {
      for await (const b of this.#drainFeed!) {
        this.drains.push(b.batch.app, linesOf(b.batch, b.seq))
        b.ack()
      }
    })
    if (this.#opts.syslog) {
      if (!this.#opts.inputSecret) log.warn('logger: no WHARF_LOG_INPUT_SECRET: the syslog receiver files no line')
      this.syslog = await SyslogServer.listen({ ...this.#opts.syslog, logs, appToken: (app) => this.#apps.get(app), appRate: this.#opts.appRate, log })
    }
    if (this.archiver) this.#every(this.#opts.archiveEveryMs ?? 30_000, () => this.archiver!.tick().then(() => {}))
    this.#every(this.#opts.drainsEveryMs ?? 30_000, async () => {
      await this.#loadApps()
      await this.#loadDrains()
    })
  }

  /** Resolves once the lines the stream held at start are in the rings. */
  replayed(): Promise<void> {
    return this.#replayed
  }

  async stop(): Promise<void> {
    this.#stopping = true
    for (const t of this.#timers) clearInterval(t)
    for (const s of this.#subs) s.unsubscribe()
    await this.syslog?.close()
    await this.#events?.stop()
    await this.#drainFeed?.close()
    await this.#feed?.close()
    await Promise.allSettled(this.#loops)
    await this.drains.close()
    await this.archiver?.idle()
  }

  health(): { ok: boolean; detail: Record<string, unknown> } {
    return {
      ok: true,
      detail: {
        seq: this.seq,
        apps: this.rings.apps,
        ...this.stats,
        syslog: this.syslog?.stats,
        archive: this.archiver?.stats,
        drains: this.drains.stats().length,
      },
    }
  }

  #loop(name: string, body: () => Promise<void>): void {
    this.#loops.push(
      body().catch((err) => {
        if (!this.#stopping) this.log.error({ err, loop: name }, 'logger: a feed stopped')
      }),
    )
  }

  #every(ms: number, fn: () => Promise<void>): void {
    const t = setInterval(() => fn().catch((err) => this.log.warn({ err }, 'logger: a periodic task failed')), ms)
    t.unref()
    this.#timers.push(t)
  }

  async #answer(m: Msg, handle: (req: unknown) => Promise<{ lines: LogLine[]; seq?: number }>): Promise<void> {
    try {
      const { lines, seq } = await handle(JSON.parse(new TextDecoder().decode(m.data)))
      for (const chunk of chunksOf(lines, seq)) m.respond(chunk)
    } catch (err) {
      const error = isWharfError(err) ? { code: err.code, message: err.message } : { code: 'WHARF_INTERNAL', message: 'the logger failed; see its log' }
      if (!isWharfError(err)) this.log.error({ err }, 'logger: a request failed')
      m.respond(new TextEncoder().encode(JSON.stringify({ error })))
    }
    m.respond(new Uint8Array(0))
  }

  async #recent(r: RecentRequest): Promise<{ lines: LogLine[]; seq: number }> {
    await this.#replayed
    const seq = this.seq
    return { seq, lines: this.rings.recent(r.app, Math.min(r.lines, MAX_REQUEST_LINES), r.type === undefined ? {} : { type: r.type }) }
  }

  async #history(r: HistoryRequest): Promise<{ lines: LogLine[] }> {
    const since = new Date(r.since)
    const limit = Math.min(r.limit, MAX_REQUEST_LINES)
    const filter = r.type === undefined ? {} : { type: r.type }
    const archived = this.archiver ? await this.archiver.read(r.app, since, filter, limit) : []
    const live: LogLine[] = []
    const from = since.toISOString()
    const { logs } = this.#opts
    for await (const b of logs.read(logs.subjects.appFilter(r.app), { startTime: since, untilSeq: this.seq })) {
      for (const l of linesOf(b.batch, b.seq)) if (l.time >= from && (filter.type === undefined || l.type === filter.type)) live.push(l)
      if (live.length >= limit) break
    }
    return { lines: mergeLines(archived, live).slice(0, limit) }
  }

  async #onEvent(e: Parameters<typeof platformLine>[0]): Promise<void> {
    const app = isWharfEvent(e) && 'app' in e.data ? e.data.app : undefined
    if (e.type === 'AppCreated' && app) {
      this.#live(app, e.occurredAt)
      this.#destroyed.delete(app)
      this.#purged.delete(app)
    }
    const line = platformLine(e, this.#numbers)
    if (line) {
      const { logs } = this.#opts
      await logs.publish(logs.subjects.subjectOf(line.app, 'wharf'), { app: line.app, source: 'wharf', lines: [[e.occurredAt, -1, line.text]] }, e.id)
      this.stats.platformLines++
    }
    if (e.type === 'AppDestroyed' && app) {
      this.#apps.delete(app)
      this.#destroyed.add(app)
      // A name reused later is a new app: none of these lines may reach it. (Lines its containers print
      // while they stop, after this, are only seen by an app created again within those seconds.)
      const { logs } = this.#opts
      const upTo = await logs.lastSeq()
      const purged = await logs.purge(logs.subjects.appFilter(app))
      // The feed may still hold batches from before the purge: they must not refill the ring.
      this.#purged.set(app, upTo)
      this.rings.drop(app)
      const archives = (await this.archiver?.forget(app)) ?? 0
      this.log.info({ app, purged, archives }, 'logger: the lines and archives of a destroyed app are deleted')
    }
    if (e.type === 'DrainAdded' || e.type === 'DrainRemoved' || e.type === 'AppDestroyed') {
      await waitFor(this.#opts.pool, e.seq, { projections: ['drains'], timeoutMs: 10_000 }).catch(() => {})
      await this.#loadDrains()
    }
  }

  /** The live apps (syslog lines for others are dropped), from the read model; kept current by the events. */
  async #loadApps(): Promise<void> {
    try {
      for (const r of await liveApps(this.#opts.pool)) {
        // The events are fresher than the read model: an app they destroyed stays gone, and an
        // incarnation is only replaced by a later one (the read model may still show the earlier).
        const known = this.#apps.get(r.name)
        if (this.#destroyed.has(r.name) || (known && Date.parse(known.created) >= Date.parse(r.created))) continue
        this.#live(r.name, r.created)
      }
    } catch (err) {
      // The projector has not made the read models yet (it may run elsewhere): read again later.
      this.log.warn({ err }, 'logger: cannot read the apps read model yet')
    }
  }

  /** `app` is live, its incarnation created at `created`: the token of that incarnation. */
  #live(app: string, created: string): void {
    const secret = this.#opts.inputSecret
    this.#apps.set(app, { created, token: secret ? logInputToken(secret, app, created) : undefined })
  }

  async #loadDrains(): Promise<void> {
    try {
      await this.drains.set(await allDrains(this.#opts.pool))
    } catch (err) {
      this.log.warn({ err }, 'logger: cannot read the drains read model yet')
    }
  }
}
