/**
 * Delivery to per-app drains. Each drain has its own bounded buffer and its own loop: a drain that is
 * slow or down only fills (then overflows) its own buffer, so it slows nothing else. Lines go as RFC
 * 5424 frames, octet-counted: over one TCP or TLS connection kept open (`syslog://`, `syslog+tls://`),
 * or POSTed in batches (`https://`, as Heroku's `application/logplex-1`). A failed send is retried
 * with backoff (0.5 s doubling to 30 s); lines dropped from a full buffer are counted and said in the
 * drain's stream once it answers again.
 */
import { isIP, connect as tcpConnect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { connect as tlsConnect } from 'node:tls'
import { Agent, request } from 'undici'
import type { Logger } from '../../core/log.js'
import { appLabel, drainDeliveries, logLinesDropped } from '../../core/metrics.js'
import { checkAddress, outboundLookup, type OutboundPolicy } from '../../core/outbound.js'
import { parseDrainUrl, type DrainUrl } from '../../domain/app/drains.js'
import { formatSyslogFrame, processOf, type LogLine } from '../../logs/index.js'

export interface DrainTarget {
  id: string
  app: string
  url: string
}

export interface DrainOptions {
  /** Lines a drain buffers while it cannot send, default 10_000 (then the oldest are dropped). */
  bufferLines?: number
  /** Lines per send, default 500. */
  batchLines?: number
  /** First pause after a failure, ms, default 500; doubled up to `maxBackoffMs` (default 30_000). */
  minBackoffMs?: number
  maxBackoffMs?: number
  /** Connect and request timeout, ms, default 10_000. */
  timeoutMs?: number
  /** Certificate authorities to trust for TLS drains instead of the system's (tests). */
  ca?: string | Buffer
  /**
   * Where drains may connect (core/outbound.ts), checked on the address each connection is made to.
   * Default: no exceptions (no loopback, private or link-local target).
   */
  policy?: OutboundPolicy
}

export interface DrainStats {
  id: string
  url: string
  buffered: number
  sent: number
  dropped: number
  failures: number
  lastError?: string
}

/** No exceptions: what a drain may reach when no policy is given. */
const STRICT: OutboundPolicy = { allow: [], ownPorts: [] }

/** One drain: its buffer, its connection, its loop. */
export class Drain {
  readonly target: DrainTarget
  readonly #url: DrainUrl
  readonly #opts: Required<Omit<DrainOptions, 'ca'>> & { ca?: string | Buffer }
  readonly #lookup: ReturnType<typeof outboundLookup>
  readonly #log: Logger
  #buffer: LogLine[] = []
  #dropped = 0
  /** Dropped lines not yet told to the drain. */
  #untold = 0
  #sent = 0
  #failures = 0
  #lastError: string | undefined
  #closed = false
  #wake: (() => void) | undefined
  #socket: Socket | undefined
  #agent: Agent | undefined
  readonly #stopper = new AbortController()
  readonly #loop: Promise<void>

  constructor(target: DrainTarget, opts: DrainOptions, log: Logger) {
    this.target = target
    this.#url = parseDrainUrl(target.url)
    this.#opts = { bufferLines: 10_000, batchLines: 500, minBackoffMs: 500, maxBackoffMs: 30_000, timeoutMs: 10_000, policy: STRICT, ...opts }
    this.#lookup = outboundLookup(this.#opts.policy, this.#url.port)
    this.#log = log.child({ drain: target.id, app: target.app })
    this.#loop = this.#run()
  }

  /** Queues lines (never waits); past the bound the oldest are dropped and counted. */
  push(lines: readonly LogLine[]): void {
    if (this.#closed) return
    for (const l of lines) this.#buffer.push(l)
    const over = this.#buffer.length - this.#opts.bufferLines
    if (over > 0) {
      this.#buffer.splice(0, over)
      this.#dropped += over
      this.#untold += over
      logLinesDropped.inc({ app: appLabel.of(this.target.app), reason: 'drain_full' }, over)
    }
    this.#wake?.()
  }

  stats(): DrainStats {
    return {
      id: this.target.id,
      url: this.target.url,
      buffered: this.#buffer.length,
      sent: this.#sent,
      dropped: this.#dropped,
      failures: this.#failures,
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
    }
  }

  /** Stops; what is buffered is given up. */
  async close(): Promise<void> {
    this.#closed = true
    this.#stopper.abort()
    this.#wake?.()
    this.#socket?.destroy()
    await this.#loop
    await this.#agent?.close().catch(() => {})
  }

  async #run(): Promise<void> {
    let backoff = this.#opts.minBackoffMs
    while (!this.#closed) {
      if (this.#buffer.length === 0) {
        await new Promise<void>((r) => (this.#wake = r))
        this.#wake = undefined
        continue
      }
      const batch = this.#buffer.splice(0, this.#opts.batchLines)
      const told = this.#untold
      const frames = batch.map((l) => formatSyslogFrame(l, processOf(l)))
      if (told > 0) {
        const first = batch[0]!
        frames.unshift(
          formatSyslogFrame(
            { ...first, source: 'wharf', stream: 'stdout', text: `[wharf] ${told} lines were dropped: this drain could not keep up or was unreachable` },
            'wharf',
          ),
        )
      }
      try {
        await this.#send(frames)
        this.#sent += batch.length
        this.#untold -= told
        drainDeliveries.inc({ kind: this.#url.kind, outcome: 'ok' })
        backoff = this.#opts.minBackoffMs
      } catch (err) {
        this.#failures++
        this.#lastError = (err as Error).message
        drainDeliveries.inc({ kind: this.#url.kind, outcome: 'failed' })
        if (this.#failures === 1 || this.#failures % 20 === 0)
          this.#log.warn({ err, failures: this.#failures }, 'logger: a drain does not take lines; retrying')
        this.#socket?.destroy()
        this.#socket = undefined
        // Back to the front, unless newer lines filled the buffer meanwhile.
        this.#buffer.unshift(...batch)
        this.push([])
        await sleep(backoff, undefined, { signal: this.#stopper.signal }).catch(() => {})
        backoff = Math.min(backoff * 2, this.#opts.maxBackoffMs)
      }
    }
  }

  async #send(frames: Buffer[]): Promise<void> {
    if (this.#url.kind === 'https') return this.#post(frames)
    const socket = this.#socket ?? (this.#socket = await this.#connect())
    const body = Buffer.concat(frames)
    await new Promise<void>((resolve, reject) => {
      if (socket.destroyed) return reject(new Error('connection closed'))
      const fail = (err?: Error) => reject(err ?? new Error('connection closed'))
      socket.once('error', fail)
      socket.once('close', fail)
      const done = () => {
        socket.off('error', fail)
        socket.off('close', fail)
        resolve()
      }
      if (socket.write(body)) done()
      else socket.once('drain', done)
    })
  }

  /** A literal address is never looked up: it is checked here (names are checked by the lookup, on the address connected to). */
  #checkLiteral(): void {
    if (isIP(this.#url.host)) checkAddress(this.#opts.policy, this.#url.host, this.#url.host, this.#url.port)
  }

  #connect(): Promise<Socket> {
    const { host, port, kind } = this.#url
    this.#checkLiteral()
    const lookup = this.#lookup
    return new Promise<Socket>((resolve, reject) => {
      const socket =
        kind === 'syslog+tls'
          ? tlsConnect({ host, port, lookup, ...(isIP(host) ? {} : { servername: host }), ...(this.#opts.ca ? { ca: this.#opts.ca } : {}) })
          : tcpConnect({ host, port, lookup })
      const timer = setTimeout(() => socket.destroy(new Error(`no connection to ${host}:${port} within ${this.#opts.timeoutMs} ms`)), this.#opts.timeoutMs)
      socket.once(kind === 'syslog+tls' ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer)
        socket.removeAllListeners('error')
        // Errors after this are seen by the next send (and the socket is made again).
        socket.on('error', () => {})
        // The receiver sends nothing: anything it does send is read and ignored, so the socket never stalls.
        socket.resume()
        resolve(socket)
      })
      socket.once('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
    })
  }

  async #post(frames: Buffer[]): Promise<void> {
    this.#checkLiteral()
    this.#agent ??= new Agent({ connect: { timeout: this.#opts.timeoutMs, lookup: this.#lookup, ...(this.#opts.ca ? { ca: this.#opts.ca } : {}) } })
    const res = await request(this.target.url, {
      method: 'POST',
      dispatcher: this.#agent,
      headers: {
        'content-type': 'application/logplex-1',
        'logplex-msg-count': String(frames.length),
        'logplex-drain-token': this.target.id,
        'user-agent': 'wharf-logger',
      },
      body: Buffer.concat(frames),
      headersTimeout: this.#opts.timeoutMs,
      bodyTimeout: this.#opts.timeoutMs,
      signal: this.#stopper.signal,
    })
    await res.body.dump()
    if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`the drain answered HTTP ${res.statusCode}`)
  }
}

/** The drains of every app, kept in line with the drains read model. */
export class Drains {
  readonly #drains = new Map<string, Drain>()

  readonly #opts: DrainOptions
  readonly #log: Logger

  constructor(opts: DrainOptions, log: Logger) {
    this.#opts = opts
    this.#log = log
  }

  /** Makes the running drains exactly `targets`: new ones start, removed ones stop. */
  async set(targets: readonly DrainTarget[]): Promise<void> {
    const wanted = new Map(targets.map((t) => [`${t.app} ${t.id}`, t]))
    for (const [key, d] of this.#drains) {
      if (!wanted.has(key)) {
        this.#drains.delete(key)
        await d.close()
      }
    }
    for (const [key, t] of wanted) {
      if (this.#drains.has(key)) continue
      try {
        this.#drains.set(key, new Drain(t, this.#opts, this.#log))
      } catch (err) {
        this.#log.warn({ err, drain: t.id, app: t.app }, 'logger: a drain URL is not usable; skipped')
      }
    }
  }

  /** Hands lines of `app` to each of its drains. */
  push(app: string, lines: readonly LogLine[]): void {
    for (const d of this.#drains.values()) if (d.target.app === app) d.push(lines)
  }

  stats(app?: string): DrainStats[] {
    return [...this.#drains.values()].filter((d) => app === undefined || d.target.app === app).map((d) => d.stats())
  }

  async close(): Promise<void> {
    await Promise.all([...this.#drains.values()].map((d) => d.close()))
    this.#drains.clear()
  }
}
