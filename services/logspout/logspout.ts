/**
 * Logspout, one per Docker host: follows stdout and stderr of every container of one Wharf namespace
 * (from the container's start) and publishes its lines, in batches, on the log stream, one subject per
 * container (`<ns>.logs.<app>.<container>`).
 *
 * No line is repeated or dropped across a restart of logspout or of the engine connection: each
 * batch carries the container's place (a Docker timestamp and count per stream, see reader.ts); a follower
 * starts from the position of the last batch on its subject (read back from the stream) with Docker's
 * `since`, and skips what it already published. Publishes are pipelined (a few batches in flight per
 * container, the stream paused beyond that); a failed one makes the follower read its position back
 * and start again. A container that exited while logspout was down is read to its end on start.
 *
 * One app cannot starve the others: each app has a token bucket of lines a second; past it, the app's
 * streams are paused (Docker keeps the lines in its log file, so nothing is lost, the app's log only
 * lags) while other containers' streams go on.
 *
 * Only containers the platform made are followed: a Swarm task container whose task (asked of a
 * manager, see core/engine/origin.ts) names this very container and belongs to a service of the
 * namespace that says which app it runs. Labels only pick the candidates: every container carries
 * its image's labels, so `LABEL wharf.namespace=wharf wharf.app=alice ...` in bob's Dockerfile is on
 * every container of bob's image (a `docker run` of it), and the engine's classic builder (the API's
 * default, which the builder uses) runs each RUN step in a container labelled with the Dockerfile's
 * LABELs so far. An early try of the attack (LABELs in bob's Dockerfile, a RUN that prints) showed
 * nothing in alice's log only by luck: the classic builder gives its RUN containers the `none` log
 * driver (`{"Type":"none"}` in HostConfig.LogConfig, checked on this engine, Docker 20.10), so their
 * logs cannot be read ("configured logging driver does not support reading") and the follower only
 * retried until the container was gone. The same LABELs on a container of bob's image that logs
 * to json-file, or a copy of alice's task container's labels, did reach alice's log, drains and
 * (through the publisher, which needs no log) her runtime stream, the build's RUN container
 * included: services/logspout/tenants-trust.int.test.ts, which fails that way on the code before
 * this check. `wharf run` containers are not followed (their output goes to the caller).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { isNotFound, type ContainerEngine, type EventFeed } from '../../core/engine/engine.js'
import type { Logger } from '../../core/log.js'
import { TaskOrigins } from '../../core/engine/origin.js'
import { identityOfTask, LABELS, type ContainerIdentity } from '../../domain/runtime/labels.js'
import { TokenBucket, type BatchLine, type LogBatch, type LogStream } from '../../logs/index.js'
import { LogReader, placeOf, sinceOf, type Place, type ReadLine } from './reader.js'

export interface LogspoutOptions {
  /** The engine of this host. */
  docker: ContainerEngine
  /** A manager of the swarm, asked which task made a container; default `docker` (a manager on one host). */
  swarm?: Pick<ContainerEngine, 'inspectTask' | 'inspectService'>
  /** How long a task may take to name its container, ms, default 10_000 (see {@link TaskOrigins}). */
  taskSettleMs?: number
  logs: LogStream
  log: Logger
  /** Only containers labelled `wharf.namespace=<namespace>` are followed. */
  namespace: string
  /** Lines a second one app's containers may send together (then they are paused), default 10_000. */
  appRate?: number
  /** A container that exited is read on start only if it was created within this many ms (the log stream's age), default 24 h. */
  lookbackMs?: number
  /** Pause before a dropped stream is opened again, ms, default 1_000. */
  reconnectMs?: number
  /** Told of each batch the stream acknowledged (benchmarks). */
  onPublished?: (batch: LogBatch) => void
}

/** Lines per batch at most. */
const BATCH_LINES = 1_000
/** Bytes of text per batch at most (NATS takes 1 MiB a message). */
const BATCH_BYTES = 256 * 1024
/** Batches of one container awaiting the stream's ack before its Docker stream is paused. */
const MAX_IN_FLIGHT = 8
/** Followers of finished containers remembered (their positions), most recent first out last. */
const FINISHED_MAX = 5_000

/** An error that means the container is gone. */
function isGone(err: unknown): boolean {
  return isNotFound(err)
}

export class Logspout {
  readonly #followers = new Map<string, Follower>()
  readonly #origins: TaskOrigins
  /** Containers being checked (their origin asked of the swarm). */
  readonly #checking = new Map<string, Promise<void>>()
  /** Containers refused (no task of the platform made them), warned about once. */
  readonly #refused = new Set<string>()
  readonly #buckets = new Map<string, TokenBucket>()
  readonly #stopper = new AbortController()
  #events: EventFeed | undefined
  #watching: Promise<void> = Promise.resolve()
  #connected = false
  #reconnects = 0
  readonly stats = { lines: 0, batches: 0, failedPublishes: 0, malformed: 0, refused: 0 }

  private constructor(readonly opts: LogspoutOptions) {
    this.#origins = new TaskOrigins({ swarm: opts.swarm ?? opts.docker, ...(opts.taskSettleMs === undefined ? {} : { settleMs: opts.taskSettleMs }) })
  }

  /** Starts watching the engine; answers once the first reconcile has started a follower per container. */
  static async start(opts: LogspoutOptions): Promise<Logspout> {
    const spout = new Logspout(opts)
    let ready!: () => void
    const first = new Promise<void>((r) => (ready = r))
    spout.#watching = spout.#watch(ready)
    await first
    return spout
  }

  get stopping(): boolean {
    return this.#stopper.signal.aborted
  }

  get log(): Logger {
    return this.opts.log
  }

  /** Stops following; what was read is published (awaited). */
  async stop(): Promise<void> {
    this.#stopper.abort()
    this.#origins.stop()
    this.#destroyEvents()
    for (const f of this.#followers.values()) f.drop()
    await this.#watching
    await Promise.allSettled([...this.#checking.values()])
    await Promise.allSettled([...this.#followers.values()].map((f) => f.done))
  }

  health(): { ok: boolean; detail: Record<string, unknown> } {
    const following = [...this.#followers.values()].filter((f) => f.active).length
    return { ok: this.#connected, detail: { eventsConnected: this.#connected, reconnects: this.#reconnects, following, ...this.stats } }
  }

  /** Drops every connection to the engine as if it had gone away (they are opened again). For tests. */
  dropEngine(): void {
    this.#connected = false
    this.#destroyEvents()
    for (const f of this.#followers.values()) f.drop()
  }

  /** Resolves once every container followed so far has published what it read. For tests and benchmarks. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#checking.values()])
    await Promise.all([...this.#followers.values()].map((f) => f.idle()))
  }

  bucketOf(app: string): TokenBucket {
    let b = this.#buckets.get(app)
    if (!b) {
      const rate = this.opts.appRate ?? 10_000
      this.#buckets.set(app, (b = new TokenBucket(rate, rate * 2)))
    }
    return b
  }

  #destroyEvents(): void {
    const s = this.#events
    this.#events = undefined
    s?.close()
  }

  /** Follows the engine's container starts; reconciles on every (re)connect. */
  async #watch(ready: () => void): Promise<void> {
    while (!this.stopping) {
      try {
        const feed = await this.#followEvents()
        this.#events = feed
        if (this.stopping) feed.close()
        if (this.#connected === false && this.#reconnects++ > 0) this.log.info('logspout: engine events open again; reconciling')
        this.#connected = true
        const ended = feed.ended
        await this.#reconcile().catch((err) => this.log.error({ err }, 'logspout: reconcile failed'))
        ready()
        await ended
      } catch (err) {
        if (!this.stopping) this.log.warn({ err }, 'logspout: cannot follow the engine events')
      }
      this.#connected = false
      ready()
      if (!this.stopping) await sleep(this.opts.reconnectMs ?? 1_000, undefined, { signal: this.#stopper.signal }).catch(() => {})
    }
  }

  #followEvents(): Promise<EventFeed> {
    return this.opts.docker.containerEvents(
      { labels: { [LABELS.namespace]: this.opts.namespace }, actions: ['start'] },
      (ev) => {
        if (ev.action === 'start' && ev.id) this.#follow(ev.id, ev.attributes)
      },
      (err, line) => {
        if (line) this.log.error({ err, line: line.slice(0, 300) }, 'logspout: cannot read an engine event')
      },
    )
  }

  /** Follows every running container of the namespace, and reads those that exited recently to their end. */
  async #reconcile(): Promise<void> {
    const list = await this.opts.docker.listContainers({ all: true, labels: { [LABELS.namespace]: this.opts.namespace } })
    const horizon = (Date.now() - (this.opts.lookbackMs ?? 24 * 3_600_000)) / 1000
    for (const c of list) {
      if (c.state === 'running' || c.created >= horizon) this.#follow(c.id, c.labels)
    }
  }

  /** Starts following container `id` unless a follower runs for it already, once the swarm says a task of the platform made it. */
  #follow(id: string, labels: Record<string, string>): void {
    if (this.stopping || this.#refused.has(id) || this.#checking.has(id)) return
    const known = this.#followers.get(id)
    if (known) {
      known.start()
      return
    }
    const check = this.#origins
      .of(id, labels)
      .then((origin) => {
        const identity = origin
          ? identityOfTask(this.opts.namespace, {
              serviceLabels: origin.service.spec.Labels,
              specLabels: origin.task.spec.ContainerSpec?.Labels,
              ...(origin.task.slot === undefined ? {} : { slot: origin.task.slot }),
            })
          : undefined
        if (!identity) return this.#refuse(id, labels)
        if (this.stopping) return
        let f = this.#followers.get(id)
        if (!f) {
          f = new Follower(this, id, identity)
          this.#followers.set(id, f)
          this.#forgetFinished()
        }
        f.start()
      })
      .catch((err) => this.log.warn({ err, container: id.slice(0, 12) }, 'logspout: cannot ask the swarm which task made a container; not followed'))
      .finally(() => this.#checking.delete(id))
    this.#checking.set(id, check)
  }

  #refuse(id: string, labels: Record<string, string>): void {
    this.#refused.add(id)
    this.stats.refused++
    if (this.#refused.size > FINISHED_MAX) this.#refused.delete(this.#refused.values().next().value!)
    this.log.warn(
      { container: id.slice(0, 12), app: labels[LABELS.app], type: labels[LABELS.type] },
      'logspout: a container labelled with the namespace that no task of the platform made (a build step, a forged label); not followed',
    )
  }

  #forgetFinished(): void {
    if (this.#followers.size <= FINISHED_MAX) return
    for (const [oldId, old] of this.#followers) {
      if (this.#followers.size <= FINISHED_MAX) break
      if (!old.active) this.#followers.delete(oldId)
    }
  }
}

/** The reading of one container's log. */
class Follower {
  readonly short: string
  readonly subject: string
  active = false
  done: Promise<void> = Promise.resolve()
  /** Place (a position per stream) of the last line handed to the stream. */
  #pos: Place | undefined
  #loaded = false
  #stream: (NodeJS.ReadableStream & { destroy?: () => void }) | undefined
  #batch: BatchLine[] = []
  #batchBytes = 0
  #batchPos: Place | undefined
  #inFlight = 0
  #failed = false
  readonly #waiters: (() => void)[] = []
  #pausedByRate = false

  readonly #spout: Logspout

  constructor(
    spout: Logspout,
    readonly id: string,
    readonly identity: ContainerIdentity,
  ) {
    this.#spout = spout
    this.short = id.slice(0, 12)
    this.subject = spout.opts.logs.subjects.subjectOf(identity.app, this.short)
  }

  start(): void {
    if (this.active) return
    this.active = true
    this.done = this.#run()
      .catch((err) => this.#spout.log.error({ err, container: this.short, app: this.identity.app }, 'logspout: following a container failed'))
      .finally(() => (this.active = false))
  }

  /** Ends the current Docker stream (the run loop reads on from the position, unless stopping). */
  drop(): void {
    this.#stream?.destroy?.()
  }

  /** Resolves once nothing of this container is waiting to be published. */
  async idle(): Promise<void> {
    while (this.#inFlight > 0 || this.#batch.length > 0) {
      this.#flush()
      await new Promise<void>((r) => this.#waiters.push(r))
    }
  }

  async #run(): Promise<void> {
    const { docker, logs, reconnectMs } = this.#spout.opts
    while (!this.#spout.stopping) {
      try {
        if (!this.#loaded) {
          this.#pos = placeOf((await logs.last(this.subject))?.batch.pos)
          this.#loaded = true
        }
        const info = await docker.inspectContainer(this.id)
        const stream = await docker.containerLogs(this.id, { follow: true, since: sinceOf(this.#pos) ?? 0 })
        this.#stream = stream
        const reader = new LogReader((l) => this.#add(l), this.#pos, { tty: info.tty })
        await this.#consume(stream, reader)
        this.#stream = undefined
        this.#spout.stats.malformed += reader.malformed
        const running = await docker.inspectContainer(this.id).then(
          (i) => i.running,
          (err) => (isGone(err) ? false : Promise.reject(err)),
        )
        // A stream ends when its container stopped (everything was sent) or when the connection dropped.
        reader.end(!running && !this.#spout.stopping)
        await this.idle()
        if (this.#failed) {
          // Some batch did not reach the stream: start again from what the stream has.
          this.#failed = false
          this.#loaded = false
        } else if (!running || this.#spout.stopping) return
      } catch (err) {
        if (isGone(err)) return
        if (!this.#spout.stopping)
          this.#spout.log.warn({ err, container: this.short, app: this.identity.app }, 'logspout: reading a container log failed; trying again')
        await this.idle().catch(() => {})
      }
      if (!this.#spout.stopping) await sleep(reconnectMs ?? 1_000)
    }
  }

  #consume(stream: NodeJS.ReadableStream, reader: LogReader): Promise<void> {
    return new Promise<void>((resolve) => {
      const bucket = this.#spout.bucketOf(this.identity.app)
      stream.on('data', (chunk: Buffer) => {
        const before = this.#spout.stats.lines
        reader.push(chunk)
        this.#maybeFlush()
        const wait = bucket.take(this.#spout.stats.lines - before)
        if (wait > 0 && !this.#pausedByRate) {
          this.#pausedByRate = true
          stream.pause()
          setTimeout(() => {
            this.#pausedByRate = false
            if (this.#inFlight < MAX_IN_FLIGHT) stream.resume()
          }, wait).unref()
        }
      })
      stream.on('end', () => resolve())
      stream.on('close', () => resolve())
      stream.on('error', () => resolve())
    })
  }

  get #full(): boolean {
    return this.#batch.length >= BATCH_LINES || this.#batchBytes >= BATCH_BYTES
  }

  /**
   * Sends the batch at once when nothing is in flight (a quiet container's line goes out alone, with
   * no wait) or when it is full; otherwise it grows until an ack comes back (a busy container's lines
   * go in large batches). With the most batches in flight, the Docker stream waits.
   */
  #maybeFlush(): void {
    if (this.#batch.length === 0) return
    if (this.#inFlight >= MAX_IN_FLIGHT) this.#stream?.pause()
    else if (this.#inFlight === 0 || this.#full) this.#flush()
  }

  #add(l: ReadLine): void {
    // A full batch goes now if it may; else it takes the rest of this chunk too (bounded by a chunk).
    if (this.#full && this.#inFlight < MAX_IN_FLIGHT) this.#flush()
    this.#batch.push([l.time, l.stream, l.text])
    this.#batchBytes += l.text.length + 40
    this.#batchPos = l.pos
    this.#pos = l.pos
    this.#spout.stats.lines++
  }

  #flush(): void {
    if (this.#batch.length === 0 || !this.#batchPos) return
    const { app, type, number, release } = this.identity
    const batch: LogBatch = { app, source: 'app', type, release, origin: this.short, lines: this.#batch, pos: this.#batchPos }
    if (number !== undefined) batch.number = number
    const msgID = `${this.short}-${this.#batchPos.map((p) => (p ? p.join('.') : '')).join('-')}`
    this.#batch = []
    this.#batchBytes = 0
    this.#inFlight++
    if (this.#inFlight >= MAX_IN_FLIGHT) this.#stream?.pause()
    this.#spout.opts.logs.publish(this.subject, batch, msgID).then(
      () => {
        this.#spout.stats.batches++
        this.#spout.opts.onPublished?.(batch)
        this.#settle()
      },
      (err: unknown) => {
        this.#spout.stats.failedPublishes++
        if (!this.#failed) this.#spout.log.warn({ err, container: this.short, app }, 'logspout: a batch was not stored; reading on from the stream position')
        this.#failed = true
        this.#stream?.destroy?.()
        this.#settle()
      },
    )
  }

  #settle(): void {
    this.#inFlight--
    if (!this.#failed) this.#maybeFlush()
    if (this.#inFlight < MAX_IN_FLIGHT && !this.#pausedByRate && !this.#failed) this.#stream?.resume()
    if (this.#inFlight === 0) for (const w of this.#waiters.splice(0)) w()
  }
}
