/**
 * The publisher of one Docker host: follows the engine's events for the containers of one Wharf
 * namespace and announces them on their app's runtime stream: `ContainerStarted` once the port
 * accepts connections (and the health check passes), `ContainerStopping` the moment a stop is asked
 * (routers take it out; a `web` container stopped with the drain signal gets SIGTERM from here only
 * after its drain time), `ContainerStopped` / `ContainerCrashed` when it dies. On start and after every
 * reconnect of the events stream it reconciles: running containers not yet announced are announced,
 * announced containers that no longer run are announced stopped.
 *
 * Every announcement is decided against the app's runtime stream and appended with its expected
 * version, so nothing is announced twice, by this publisher after a restart or by two at once.
 *
 * Only containers the platform made are announced: a Swarm task container whose task (asked of a
 * manager, see core/engine/origin.ts) names this very container, of a service of the namespace that
 * says which app it runs; the app, type and release come from that task and service, never from the
 * container's labels (which any image's LABELs, and a classic build's RUN containers, can set: see
 * services/logspout/logspout.ts). Each container is checked once, its events handled in order after.
 */
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import {
  engineStatus,
  isEngineUnreachable,
  isNotFound,
  type ContainerEngine,
  type ContainerEvent,
  type ContainerInfo,
  type EventFeed,
} from '../../core/engine/engine.js'
import { isWharfError } from '../../core/errors.js'
import type { Logger } from '../../core/log.js'
import { readState, runCommand } from '../../domain/command.js'
import { dataOf } from '../../domain/index.js'
import { runtimeDecider, type Announcement, type AppProcess } from '../../domain/runtime/decider.js'
import { streamId, type EventStore } from '../../events/index.js'
import { hostContainers, lastServed } from '../../projections/index.js'
import { TaskOrigins } from '../../core/engine/origin.js'
import { DRAIN_SIGNAL, identityOfTask, LABELS, type ContainerIdentity } from '../../domain/runtime/labels.js'
import { classifyDeath, signalNumber } from './model.js'

export interface PublisherOptions {
  /** The engine of this host. */
  docker: ContainerEngine
  /** A manager of the swarm, asked which task made a container; default `docker` (a manager on one host). */
  swarm?: Pick<ContainerEngine, 'inspectTask' | 'inspectService'>
  /** How long a task may take to name its container, ms, default 10_000 (see {@link TaskOrigins}). */
  taskSettleMs?: number
  store: EventStore
  /** For the reconcile on start: the containers read model (`rm_containers`). */
  pool?: pg.Pool
  /** The containers the read model has up or stopping on `host` (default: the containers read model's `hostContainers` over `pool`). */
  announced?: (host: string) => Promise<{ container: string; app: string; type: string }[]>
  /**
   * The containers of `app` the routers last recorded as served (their newest `RouteServed`) and its
   * log position, undefined when they recorded none: a drain lasts until they no longer list its
   * container (default: the event log's read model over `pool`; neither: a drain lasts its drain time).
   */
  served?: (app: string) => Promise<{ seq: number; servers: readonly { container: string }[] } | undefined>
  /** Pause between two looks at what the routers serve while a drain waits for them, ms, default 200. */
  servedPollMs?: number
  /** Whether `host:port` accepts a TCP connection (the readiness probe), default {@link accepts}. */
  probe?: (host: string, port: number) => Promise<boolean>
  log: Logger
  /** Only containers labelled `wharf.namespace=<namespace>` are this publisher's. */
  namespace: string
  /** The address routers reach this host's published ports at, default `127.0.0.1`. */
  host?: string
  /** How long a starting container may take to accept connections (and be healthy), ms, default 60_000. */
  readyTimeoutMs?: number
  /** Pause between two readiness probes, ms, default 100. */
  probeIntervalMs?: number
  /** Pause before the events stream is opened again after it ended, ms, default 1_000. */
  reconnectMs?: number
  /** After an engine event could not be handled (its container's task could not be learned), how soon the publisher reconciles again, ms, default 5_000. */
  reconcileAgainMs?: number
  /** Told of each event appended (for tests and benchmarks); `latencyMs` from the engine's event to the append. */
  onAnnounced?: (a: Announcement, info: { latencyMs?: number }) => void
}

/** What the publisher knows about one container it follows. */
interface Tracked {
  id: string
  identity: ContainerIdentity
  /** The signal a stop sends first (the image's STOPSIGNAL, default SIGTERM). */
  stopSignal: number
  stopAsked: boolean
  /** The log position of its `ContainerStopping`, once appended by this publisher. */
  stoppingSeq?: number
  oom: boolean
  /** Stops the readiness wait (the container is being stopped or died). */
  abort: AbortController
  /** Readiness, then `ContainerStarted`; settled once that is decided. */
  ready: Promise<void>
  /** Later announcements of this container, in order. */
  chain: Promise<void>
}

const SIGTERM = 15
const DRAIN_SIGNAL_NUMBER = signalNumber(DRAIN_SIGNAL)

/** A container's drain time from its labels (`wharf.drain-ms`), ms; undefined when it has none. */
function drainOf(labels: Record<string, string>, label: string = LABELS.drain): number | undefined {
  const raw = labels[label]
  const ms = raw && /^[0-9]{1,7}$/.test(raw) ? Number(raw) : NaN
  return ms > 0 ? ms : undefined
}
/** How many finished container ids are remembered, so a replayed event does not revive one. */
const FINISHED_MAX = 10_000
/** Attempts of one announcement when the event store fails (NATS hiccups); runCommand retries conflicts itself. */
const APPEND_ATTEMPTS = 10
/**
 * Attempts to learn a container's task while the swarm cannot answer (a manager that just restarted
 * has no leader for a moment: 503; the engine away): about 35 s in all. Given up, the event is
 * ignored, and the next reconcile (on a reconnect of the events stream) looks at the container again.
 */
const ORIGIN_ATTEMPTS = 20

export class Publisher {
  readonly #docker: ContainerEngine
  readonly #store: EventStore
  readonly #log: Logger
  readonly #host: string
  readonly #readyTimeoutMs: number
  readonly #probeIntervalMs: number
  readonly #reconnectMs: number
  readonly #probe: (host: string, port: number) => Promise<boolean>
  readonly #tracked = new Map<string, Tracked>()
  readonly #finished = new Set<string>()
  readonly #origins: TaskOrigins
  /** Per container, its engine events being handled (each after its origin is known), in order. */
  readonly #inbox = new Map<string, Promise<void>>()
  /** Containers refused (no task of the platform made them), warned about once. */
  readonly #refused = new Set<string>()
  /** The apps whose runtime stream this process has announced on. */
  readonly #apps = new Set<string>()
  /** The containers this process announced started (on its host) and not yet ended. */
  readonly #startedHere = new Set<string>()
  readonly #appLocks = new Map<string, Promise<unknown>>()
  readonly #stopper = new AbortController()
  /** Drains under way (SIGTERM after the drain time). */
  readonly #drains = new Set<Promise<void>>()
  #events: EventFeed | undefined
  #watching: Promise<void> = Promise.resolve()
  /** Engine time (s) of the newest event seen: where a reconnect resumes. */
  #lastSeen: number | undefined
  #connected = false
  /** How many times the events stream was opened again after it ended. */
  #reconnects = 0
  #firstReconcile: { promise: Promise<void>; resolve: () => void }
  /** The reconcile under way (they run one at a time). */
  #reconciling: Promise<void> = Promise.resolve()
  /** A reconcile asked for after an event could not be handled. */
  #reconcileTimer: NodeJS.Timeout | undefined

  readonly #opts: PublisherOptions

  private constructor(opts: PublisherOptions) {
    this.#opts = opts
    this.#docker = opts.docker
    this.#store = opts.store
    this.#log = opts.log
    this.#host = opts.host ?? '127.0.0.1'
    this.#readyTimeoutMs = opts.readyTimeoutMs ?? 60_000
    this.#probeIntervalMs = opts.probeIntervalMs ?? 100
    this.#reconnectMs = opts.reconnectMs ?? 1_000
    this.#probe = opts.probe ?? accepts
    this.#origins = new TaskOrigins({ swarm: opts.swarm ?? opts.docker, ...(opts.taskSettleMs === undefined ? {} : { settleMs: opts.taskSettleMs }) })
    let resolve!: () => void
    this.#firstReconcile = { promise: new Promise<void>((r) => (resolve = r)), resolve }
  }

  /** Starts watching; answers once the events stream is open and the first reconcile has run. */
  static async start(opts: PublisherOptions): Promise<Publisher> {
    const p = new Publisher(opts)
    p.#watching = p.#watch()
    await p.#firstReconcile.promise
    return p
  }

  get stopping(): boolean {
    return this.#stopper.signal.aborted
  }

  /** Stops watching, gives up readiness waits, and waits for announcements under way. */
  async stop(): Promise<void> {
    this.#stopper.abort()
    clearTimeout(this.#reconcileTimer)
    this.#origins.stop()
    this.#destroyEvents()
    for (const t of this.#tracked.values()) t.abort.abort()
    await this.#watching
    await this.#reconciling.catch(() => {})
    await Promise.allSettled([...this.#inbox.values()])
    await Promise.allSettled([...this.#tracked.values()].flatMap((t) => [t.ready, t.chain]))
    await Promise.allSettled([...this.#appLocks.values()])
    await Promise.allSettled([...this.#drains])
  }

  /** Health: whether the engine's events stream is open. */
  health(): { ok: boolean; detail: Record<string, unknown> } {
    return {
      ok: this.#connected,
      detail: { eventsConnected: this.#connected, reconnects: this.#reconnects, following: this.#tracked.size, refused: this.#refused.size },
    }
  }

  /** Ends the current events stream as if the engine had dropped it (the publisher reconnects). For tests. */
  dropEvents(): void {
    this.#connected = false
    this.#destroyEvents()
  }

  /** Resolves when the announcements of every followed container that are under way are decided. For tests. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#inbox.values()])
    await Promise.allSettled([...this.#tracked.values()].flatMap((t) => [t.ready, t.chain]))
  }

  #destroyEvents(): void {
    const s = this.#events
    this.#events = undefined
    s?.close()
  }

  /** Opens the events stream, reconciles, follows it; again after it ends, resuming at the last event seen. */
  async #watch(): Promise<void> {
    let first = true
    while (!this.stopping) {
      // A reconnect replays what it missed; a first start follows from now (the reconcile right after
      // the stream opens covers what came before: replaying an old `die` without its `kill` would
      // make a requested stop look like a crash).
      const since = this.#lastSeen
      try {
        const feed = await this.#follow(since)
        this.#events = feed
        if (this.stopping) feed.close()
        this.#connected = true
        const ended = feed.ended
        if (!first) {
          this.#reconnects++
          this.#log.info({ since }, 'publisher: events stream open again; reconciling')
        }
        await this.#reconcileNow().catch((err) => this.#log.error({ err }, 'publisher: reconcile failed'))
        if (first) this.#firstReconcile.resolve()
        first = false
        await ended
      } catch (err) {
        if (!this.stopping) this.#log.warn({ err }, 'publisher: cannot follow the engine events')
      }
      this.#connected = false
      if (first && !this.stopping) {
        // No engine at all on start: let start() answer (health says so) and keep trying.
        this.#firstReconcile.resolve()
        first = false
      }
      if (!this.stopping) await sleep(this.#reconnectMs, undefined, { signal: this.#stopper.signal }).catch(() => {})
    }
    this.#firstReconcile.resolve()
  }

  /** Opens the engine's events feed of the namespace's containers (replaying from `since`). */
  #follow(since: number | undefined): Promise<EventFeed> {
    return this.#docker.containerEvents(
      { labels: { [LABELS.namespace]: this.#opts.namespace }, ...(since === undefined ? {} : { since }) },
      (e) => this.#onEvent(e),
      (err, line) => {
        if (line) this.#log.error({ err, line: line.slice(0, 500) }, 'publisher: cannot handle an engine event')
        else if (!this.stopping) this.#log.warn({ err }, 'publisher: the engine events stream failed')
      },
    )
  }

  #onEvent(ev: ContainerEvent): void {
    if (ev.time) this.#lastSeen = Math.max(this.#lastSeen ?? 0, ev.time)
    const id = ev.id
    const attrs = ev.attributes
    if (!id || attrs[LABELS.namespace] !== this.#opts.namespace) return
    const at = ev.timeNano ? ev.timeNano / 1e6 : ev.time ? ev.time * 1000 : undefined
    if (ev.action === 'destroy') {
      this.#admit(id, () => this.#finish(id))
      return
    }
    if (!['start', 'kill', 'oom', 'die'].includes(ev.action)) return
    this.#admit(id, async () => {
      const identity = await this.#identity(id, attrs)
      if (identity) this.#handle(ev, identity, at)
    })
  }

  /** Runs `step` after the steps of container `id` queued before it (its events are handled in the order they came). */
  #admit(id: string, step: () => void | Promise<void>): void {
    const next = (this.#inbox.get(id) ?? Promise.resolve()).then(step).catch((err) => {
      this.#log.warn({ err, container: id.slice(0, 12) }, 'publisher: cannot ask the swarm which task made a container; event ignored, reconciling soon')
      // What the event would have announced, the reconcile finds (running, or announced and gone).
      this.#reconcileSoon()
    })
    this.#inbox.set(id, next)
    void next.finally(() => {
      if (this.#inbox.get(id) === next) this.#inbox.delete(id)
    })
  }

  /** The identity of container `id` from the task that made it; undefined (and warned once) when none of the platform's did. */
  async #identity(id: string, labels: Record<string, string>): Promise<ContainerIdentity | undefined> {
    if (this.#refused.has(id)) return undefined
    const origin = await this.#originOf(id, labels)
    const identity = origin
      ? identityOfTask(this.#opts.namespace, {
          serviceLabels: origin.service.spec.Labels,
          specLabels: origin.task.spec.ContainerSpec?.Labels,
          ...(origin.task.slot === undefined ? {} : { slot: origin.task.slot }),
        })
      : undefined
    if (!identity && !this.#refused.has(id)) {
      this.#refused.add(id)
      if (this.#refused.size > FINISHED_MAX) this.#refused.delete(this.#refused.values().next().value!)
      this.#log.warn(
        { container: id.slice(0, 12), app: labels[LABELS.app], type: labels[LABELS.type] },
        'publisher: a container labelled with the namespace that no task of the platform made (a build step, a forged label); ignored',
      )
    }
    return identity
  }

  /**
   * The task and service that made container `id`, asked again while the swarm cannot answer: a
   * container the restarted engine's swarm starts (a new task) must not be ignored for good because
   * its manager was not ready at its `start`.
   */
  async #originOf(id: string, labels: Record<string, string>) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#origins.of(id, labels)
      } catch (err) {
        if (!isEngineUnreachable(err) || attempt >= ORIGIN_ATTEMPTS || this.stopping) throw err
        if (attempt === 1) this.#log.info({ container: id.slice(0, 12), err }, 'publisher: the swarm cannot tell which task made a container yet; asking again')
        await sleep(Math.min(250 * 2 ** (attempt - 1), 2_000), undefined, { signal: this.#stopper.signal }).catch(() => {})
      }
    }
  }

  #handle(ev: ContainerEvent, identity: ContainerIdentity, at: number | undefined): void {
    const id = ev.id
    const attrs = ev.attributes
    switch (ev.action) {
      case 'start':
        this.#follows(id, identity, at)
        return
      case 'kill': {
        const t = this.#known(id, identity)
        const signal = signalNumber(attrs.signal)
        const drainMs = drainOf(attrs)
        const draining = drainMs !== undefined && signal === DRAIN_SIGNAL_NUMBER
        if (!t || t.stopAsked || (signal !== t.stopSignal && signal !== SIGTERM && !draining)) return
        t.stopAsked = true
        t.abort.abort()
        this.#queue(t, () => this.#announce({ kind: 'stopping', container: id, identity: t.identity }, at, (seq) => (t.stoppingSeq = seq)))
        // The longest drain (`wharf.drain-max-ms`; a container from before it: its drain time), from now: the engine's grace counts from the signal.
        if (draining) this.#drain(t, drainMs, Date.now() + Math.max(drainMs, drainOf(attrs, LABELS.drainMax) ?? drainMs))
        return
      }
      case 'oom': {
        const t = this.#known(id, identity)
        if (t) t.oom = true
        return
      }
      case 'die': {
        const t = this.#known(id, identity)
        if (!t) return
        t.abort.abort()
        const exitCode = Number(attrs.exitCode ?? 0)
        this.#queue(t, async () => {
          const death = classifyDeath({ exitCode, stopAsked: t.stopAsked, oom: t.oom })
          await this.#announce(
            death.kind === 'crashed'
              ? { kind: 'crashed', container: id, identity: t.identity, exitCode: death.exitCode, reason: death.reason }
              : { kind: 'stopped', container: id, identity: t.identity },
            at,
          )
        })
        this.#finish(id)
        return
      }
      default:
        return
    }
  }

  /** The followed container `id`, or a record of it (it started before we looked). */
  #known(id: string, identity: ContainerIdentity): Tracked | undefined {
    if (this.#finished.has(id)) return undefined
    return this.#tracked.get(id) ?? this.#track(id, identity)
  }

  /** A container this publisher follows from now on, with nothing seen of it yet. */
  #track(id: string, identity: ContainerIdentity): Tracked {
    const rec: Tracked = {
      id,
      identity,
      stopSignal: SIGTERM,
      stopAsked: false,
      oom: false,
      abort: new AbortController(),
      ready: Promise.resolve(),
      chain: Promise.resolve(),
    }
    this.#tracked.set(id, rec)
    return rec
  }

  /** Starts following a running container: readiness, then `ContainerStarted`. */
  #follows(id: string, identity: ContainerIdentity, at: number | undefined): void {
    if (this.#finished.has(id) || this.#tracked.has(id)) return
    const rec = this.#track(id, identity)
    rec.ready = this.#whenReady(rec)
      .then((port) =>
        port === false
          ? undefined
          : this.#announce({ kind: 'started', container: id, identity, host: this.#host, ...(port === undefined ? {} : { port }) }, at),
      )
      .catch((err) => this.#log.error({ err, container: id.slice(0, 12), app: identity.app }, 'publisher: cannot announce a container start'))
  }

  /**
   * A container stopped with the drain signal: once its `ContainerStopping` is appended (routers take
   * it out), it serves on for `ms` (what is in flight finishes) and until the routers no longer list
   * it as served, then gets SIGTERM; at `deadline` (its longest drain) whatever the routers say. The
   * engine sends SIGKILL at the end of its stop grace period (the longest drain included) whatever
   * happens here, so a publisher that stops meanwhile leaves the rest to it.
   *
   * Waiting for the routers matters when their event delivery stalls (a NATS server lost): a stop
   * after the drain time alone then left routers sending only to containers that were gone.
   */
  #drain(t: Tracked, ms: number, deadline: number): void {
    const done = (async () => {
      await t.chain
      await sleep(ms, undefined, { signal: this.#stopper.signal }).catch(() => {})
      await this.#routedOut(t, deadline)
      if (this.stopping) return
      try {
        await this.#docker.killContainer(t.id, 'SIGTERM')
        this.#log.info({ app: t.identity.app, container: t.id.slice(0, 12), drainMs: ms }, 'publisher: drained; SIGTERM sent')
      } catch (err) {
        // Gone already (killed, removed): nothing to stop.
        if (!isNotFound(err) && engineStatus(err) !== 409)
          this.#log.warn({ err, app: t.identity.app, container: t.id.slice(0, 12) }, 'publisher: cannot send SIGTERM after the drain')
      }
    })()
    this.#drains.add(done)
    void done.finally(() => this.#drains.delete(done))
  }

  /**
   * Waits until the routers' last record of `t`'s app does not list it (or they recorded none), or
   * until `deadline`. A record made after its `ContainerStopping` that still lists it ends the wait
   * too: the router serves a stopping container only when the app has no other (scaled to zero), and
   * waiting would not change that.
   */
  async #routedOut(t: Tracked, deadline: number): Promise<void> {
    const served = this.#opts.served ?? (this.#opts.pool ? (app: string) => lastServed(this.#opts.pool!, app) : undefined)
    if (!served) return
    const start = Date.now()
    const listed = async () => {
      try {
        const rec = await served(t.identity.app)
        if (!rec || (t.stoppingSeq !== undefined && rec.seq > t.stoppingSeq)) return false
        return rec.servers.some((s) => s.container === t.id || t.id.startsWith(s.container))
      } catch (err) {
        // Cannot tell: as if listed (until the deadline).
        this.#log.debug({ err, container: t.id.slice(0, 12) }, 'publisher: cannot read what the routers serve')
        return true
      }
    }
    while (!this.stopping && (await listed())) {
      if (Date.now() >= deadline) {
        this.#log.warn(
          { app: t.identity.app, container: t.id.slice(0, 12), waitedMs: Date.now() - start },
          'publisher: the routers still list a draining container at the end of its longest drain; stopping it anyway',
        )
        return
      }
      await sleep(Math.min(this.#opts.servedPollMs ?? 200, Math.max(1, deadline - Date.now())), undefined, { signal: this.#stopper.signal }).catch(() => {})
    }
    const waitedMs = Date.now() - start
    if (waitedMs > 1_000)
      this.#log.info({ app: t.identity.app, container: t.id.slice(0, 12), waitedMs }, 'publisher: the routers took a draining container out')
  }

  #queue(t: Tracked, step: () => Promise<void>): void {
    t.chain = t.chain
      .then(() => t.ready)
      .then(step)
      .catch((err) => this.#log.error({ err, container: t.id.slice(0, 12), app: t.identity.app }, 'publisher: cannot announce a container change'))
  }

  #finish(id: string): void {
    const t = this.#tracked.get(id)
    this.#finished.add(id)
    if (this.#finished.size > FINISHED_MAX) this.#finished.delete(this.#finished.values().next().value!)
    if (!t) return
    // Forget it once its announcements are done.
    void t.chain.then(() => {
      if (this.#tracked.get(id) === t) this.#tracked.delete(id)
    })
  }

  /**
   * Waits until the container is ready: its published port (web) accepts a TCP connection at this
   * host's address and, when it has a health check, Docker calls it healthy. Answers the port (undefined for a
   * process without one), or false when it died, is being stopped, or did not get ready in time.
   */
  async #whenReady(t: Tracked): Promise<number | undefined | false> {
    const deadline = Date.now() + this.#readyTimeoutMs
    const signal = AbortSignal.any([t.abort.signal, this.#stopper.signal])
    let why = 'not running'
    while (!signal.aborted) {
      let info: ContainerInfo
      try {
        info = await this.#docker.inspectContainer(t.id)
      } catch (err) {
        if (isNotFound(err)) return false
        throw err
      }
      if (!info.running) return false
      t.stopSignal = signalNumber(info.stopSignal) ?? SIGTERM
      const port = t.identity.type === 'web' ? publishedPort(info) : undefined
      const health = info.health
      if (t.identity.type === 'web' && port === undefined) why = 'no published port'
      // Probed where routers will reach it: the host's address (127.0.0.1 on one host).
      else if (port !== undefined && !(await this.#probe(this.#host, port))) why = `${this.#host}:${port} does not accept connections`
      else if (health !== undefined && health !== 'healthy') why = `health: ${health}`
      else return port
      if (Date.now() > deadline) {
        this.#log.warn(
          { container: t.id.slice(0, 12), app: t.identity.app, type: t.identity.type, why, timeoutMs: this.#readyTimeoutMs },
          'publisher: a container did not get ready in time; not announced',
        )
        return false
      }
      await sleep(this.#probeIntervalMs, undefined, { signal }).catch(() => {})
    }
    return false
  }

  /** Runs a reconcile after the one under way, if any. */
  #reconcileNow(): Promise<void> {
    const next = this.#reconciling.catch(() => {}).then(() => this.#reconcile())
    this.#reconciling = next
    return next
  }

  /** A reconcile in `reconcileAgainMs` (one for many asks); a reconnect of the events stream reconciles anyway. */
  #reconcileSoon(): void {
    if (this.#reconcileTimer || this.stopping) return
    this.#reconcileTimer = setTimeout(() => {
      this.#reconcileTimer = undefined
      if (this.stopping || !this.#connected) return
      void this.#reconcileNow().catch((err) => this.#log.error({ err }, 'publisher: reconcile failed'))
    }, this.#opts.reconcileAgainMs ?? 5_000)
    this.#reconcileTimer.unref()
  }

  /**
   * Compares what runs (containers of the namespace) with what was announced (the read model of this
   * host, and the app streams this process has read) and announces the difference.
   */
  async #reconcile(): Promise<void> {
    const list = await this.#docker.listContainers({ labels: { [LABELS.namespace]: this.#opts.namespace } })
    const running = new Set(list.map((c) => c.id))
    for (const c of list)
      this.#admit(c.id, async () => {
        const identity = await this.#identity(c.id, c.labels)
        if (identity) this.#follows(c.id, identity, undefined)
      })
    // Followed containers that died without a `die` in the stream: an engine restarted after a crash
    // stops its containers (no live-restore in swarm mode) before its events can be followed again,
    // and the replay from the new engine does not have them.
    for (const t of [...this.#tracked.values()]) {
      if (running.has(t.id) || this.#finished.has(t.id)) continue
      let info: ContainerInfo | undefined
      try {
        info = await this.#docker.inspectContainer(t.id)
      } catch (err) {
        if (!isNotFound(err)) continue
      }
      if (info?.running || this.#finished.has(t.id)) continue
      t.abort.abort()
      const death = classifyDeath({ exitCode: info?.exitCode ?? 0, stopAsked: t.stopAsked, oom: t.oom || (info?.oomKilled ?? false) })
      this.#log.info({ container: t.id.slice(0, 12), app: t.identity.app }, 'publisher: a followed container ended while the events stream was down')
      this.#queue(t, () =>
        this.#announce(
          death.kind === 'crashed'
            ? { kind: 'crashed', container: t.id, identity: t.identity, exitCode: death.exitCode, reason: death.reason }
            : { kind: 'stopped', container: t.id, identity: t.identity },
          undefined,
        ),
      )
      this.#finish(t.id)
    }

    const announced = new Map<string, AppProcess>()
    const pool = this.#opts.pool
    const readModel = this.#opts.announced ?? (pool ? (host: string) => hostContainers(pool, host) : undefined)
    if (readModel) {
      try {
        const rows = await readModel(this.#host)
        for (const r of rows) announced.set(r.container, { app: r.app, type: r.type })
      } catch (err) {
        this.#log.warn({ err }, 'publisher: cannot read the containers read model; reconciling with the streams read so far')
      }
    }
    for (const app of this.#apps) {
      let containers
      try {
        containers = (await readState(this.#store, runtimeDecider, streamId('runtime', app))).state.containers
      } catch (err) {
        this.#log.warn({ err, app }, 'publisher: cannot read a runtime stream; reconciling without it')
        continue
      }
      // Only the containers this process announced on its host: the stream has those of every host
      // (a publisher back from a lost engine must not announce the other hosts' containers stopped).
      for (const [container, s] of containers)
        if (s !== 'gone' && !announced.has(container) && this.#startedHere.has(container)) announced.set(container, { app, type: '' })
    }
    for (const [container, identity] of announced) {
      if (running.has(container) || this.#tracked.has(container)) continue
      const ended = await this.#inspectEnded(container)
      const type = identity.type || (await this.#typeOf(identity.app, container))
      if (!type) continue
      const rec: Tracked = {
        id: container,
        identity: { ...identity, type, release: 1 },
        stopSignal: SIGTERM,
        stopAsked: true,
        oom: ended.oom,
        abort: new AbortController(),
        ready: Promise.resolve(),
        chain: Promise.resolve(),
      }
      this.#tracked.set(container, rec)
      this.#queue(rec, () =>
        this.#announce(
          ended.oom
            ? {
                kind: 'crashed',
                container,
                identity: { app: identity.app, type },
                exitCode: ended.exitCode,
                reason: 'out of memory: the kernel killed it (OOM)',
              }
            : { kind: 'stopped', container, identity: { app: identity.app, type } },
          undefined,
        ),
      )
      this.#finish(container)
    }
  }

  async #inspectEnded(id: string): Promise<{ exitCode: number; oom: boolean }> {
    try {
      const info = await this.#docker.inspectContainer(id)
      return { exitCode: info.exitCode, oom: info.oomKilled }
    } catch {
      return { exitCode: 0, oom: false }
    }
  }

  /** The process type of a container from its `ContainerStarted`. */
  async #typeOf(app: string, container: string): Promise<string | undefined> {
    const { events } = await this.#store.readStream(streamId('runtime', app))
    const started = events.find((e) => dataOf(e, 'ContainerStarted')?.container === container)
    return dataOf(started, 'ContainerStarted')?.type
  }

  /**
   * Appends what `a` adds to its app's runtime stream (nothing when the stream says it is done), once;
   * `appended` is told the stream's version after it (its event's log position) when it appended one.
   */
  #announce(a: Announcement, at: number | undefined, appended?: (seq: number) => void): Promise<void> {
    const app = a.identity.app
    const run = async () => {
      const stream = streamId('runtime', app)
      this.#apps.add(app)
      for (let attempt = 1; ; attempt++) {
        try {
          // Decided again by runCommand when another writer (the scheduler, another publisher) got in first.
          const { events, version } = await runCommand(
            { store: this.#store },
            {
              stream,
              decider: runtimeDecider,
              command: { type: 'Announce', announcement: a },
              ctx: { actor: 'system:publisher', correlationId: a.container },
              waitFor: [],
            },
          )
          if (!events.length) return
          const latencyMs = at === undefined ? undefined : Math.round(Date.now() - at)
          this.#log.info(
            { app, type: a.identity.type, container: a.container.slice(0, 12), host: this.#host, event: events[0]?.type, latencyMs },
            'publisher: announced',
          )
          if (a.kind === 'started') this.#startedHere.add(a.container)
          else if (a.kind === 'stopped' || a.kind === 'crashed') this.#startedHere.delete(a.container)
          this.#opts.onAnnounced?.(a, latencyMs === undefined ? {} : { latencyMs })
          appended?.(version)
          return
        } catch (err) {
          if (attempt >= APPEND_ATTEMPTS || this.stopping || (isWharfError(err) && err.code === 'WHARF_CONFLICT')) throw err
          await sleep(Math.min(200 * attempt, 2_000))
        }
      }
    }
    const prev = this.#appLocks.get(app) ?? Promise.resolve()
    const next = prev.catch(() => {}).then(run)
    this.#appLocks.set(app, next)
    void next
      .finally(() => {
        if (this.#appLocks.get(app) === next) this.#appLocks.delete(app)
      })
      .catch(() => {})
    return next
  }
}

/** The host port of a container's published TCP port (the first binding), if it has one. */
export function publishedPort(info: Pick<ContainerInfo, 'ports'>): number | undefined {
  for (const [key, ports] of Object.entries(info.ports)) {
    if (!key.endsWith('/tcp')) continue
    for (const port of ports) if (port > 0) return port
  }
  return undefined
}

/** Whether `host:port` accepts a TCP connection within `timeoutMs` (default 1_000). */
export function accepts(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}
