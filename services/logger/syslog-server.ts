/**
 * The syslog receiver: RFC 5424 and RFC 3164 messages on TCP (octet-counted or one per line) and UDP
 * (one per datagram) on 127.0.0.1, each filed under the app its APP-NAME (RFC 3164: TAG) names and
 * published on the log stream (`<ns>.logs.<app>.syslog`), but only when the message begins with that
 * app's log-input token (`logs/input-token.ts`): any program on the host reaches this port, and only
 * those given the token by someone who may use the app may write into its log and drains. Malformed
 * frames, lines for apps that do not exist, lines without the app's token, and lines over an app's
 * rate are counted and dropped.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { createServer, type Server, type Socket } from 'node:net'
import { nuid } from '@nats-io/transport-node'
import type { Logger } from '../../core/log.js'
import { appLabel, logLinesDropped } from '../../core/metrics.js'
import { PROCESS_TYPE } from '../../domain/index.js'
import {
  parseSyslog,
  sameToken,
  sanitizeLine,
  splitInputToken,
  SyslogFramer,
  TokenBucket,
  type BatchLine,
  type LogBatch,
  type LogStream,
} from '../../logs/index.js'

export interface SyslogServerOptions {
  host: string
  /** TCP and UDP port; 0 takes a free one (the same for both). */
  port: number
  logs: LogStream
  /**
   * The log-input token of a live app: undefined when there is no such app (its lines are dropped),
   * `{ token: undefined }` when the platform has no log-input secret (every line is dropped).
   */
  appToken: (app: string) => { token: string | undefined } | undefined
  /** Lines a second one app may send, default 10_000. */
  appRate?: number
  log: Logger
}

/** A process named in PROCID: `web.1`. */
const PROCESS = new RegExp(`^(${PROCESS_TYPE})\\.([0-9]{1,4})$`)
/** TCP connections at once. */
const MAX_CONNECTIONS = 1_000

export class SyslogServer {
  readonly stats = { received: 0, published: 0, malformed: 0, unknownApp: 0, badToken: 0, overRate: 0 }
  /** Lines of this turn of the event loop by app and sender: a batch each. */
  readonly #pending = new Map<string, { app: string; origin: string | undefined; lines: BatchLine[] }>()
  readonly #buckets = new Map<string, TokenBucket>()
  readonly #sockets = new Set<Socket>()
  #flushing: NodeJS.Immediate | undefined

  readonly #opts: SyslogServerOptions
  readonly #tcp: Server
  readonly #udp: UdpSocket

  private constructor(opts: SyslogServerOptions, tcp: Server, udp: UdpSocket) {
    this.#opts = opts
    this.#tcp = tcp
    this.#udp = udp
  }

  /** Listens on TCP and UDP (the same port); answers once both are bound. */
  static async listen(opts: SyslogServerOptions): Promise<SyslogServer> {
    const tcp = createServer()
    tcp.maxConnections = MAX_CONNECTIONS
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject)
      tcp.listen(opts.port, opts.host, () => resolve())
    })
    const port = (tcp.address() as { port: number }).port
    const udp = createSocket('udp4')
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject)
        udp.bind(port, opts.host, () => resolve())
      })
    } catch (err) {
      tcp.close()
      throw err
    }
    const server = new SyslogServer(opts, tcp, udp)
    tcp.on('connection', (s) => server.#connection(s))
    udp.on('message', (msg) => server.#frame(msg))
    udp.on('error', (err) => opts.log.warn({ err }, 'logger: syslog UDP socket error'))
    return server
  }

  get port(): number {
    return (this.#tcp.address() as { port: number }).port
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy()
    await new Promise<void>((r) => this.#tcp.close(() => r()))
    await new Promise<void>((r) => this.#udp.close(() => r()))
    this.#flush()
  }

  #malformed(): void {
    this.stats.malformed++
    logLinesDropped.inc({ app: '-', reason: 'malformed' })
  }

  #connection(socket: Socket): void {
    this.#sockets.add(socket)
    const framer = new SyslogFramer(
      (frame) => this.#frame(frame),
      () => this.#malformed(),
    )
    socket.on('data', (chunk: Buffer) => framer.push(chunk))
    socket.on('end', () => framer.end())
    socket.on('error', () => {})
    socket.on('close', () => this.#sockets.delete(socket))
  }

  #frame(frame: Buffer): void {
    this.stats.received++
    let m
    try {
      m = parseSyslog(frame.toString('utf8'))
    } catch {
      this.#malformed()
      return
    }
    const app = m.appName
    if (!app) {
      this.#malformed()
      return
    }
    const expected = this.#opts.appToken(app)
    if (!expected) {
      this.stats.unknownApp++
      // Not an app: its name is not a label (anyone may send any name).
      logLinesDropped.inc({ app: '-', reason: 'unknown_app' })
      return
    }
    // Before the rate: lines without the token must not spend the app's budget.
    const { token, text } = splitInputToken(m.message)
    if (token === undefined || expected.token === undefined || !sameToken(token, expected.token)) {
      this.stats.badToken++
      logLinesDropped.inc({ app: appLabel.of(app), reason: 'bad_token' })
      return
    }
    let bucket = this.#buckets.get(app)
    if (!bucket) {
      const rate = this.#opts.appRate ?? 10_000
      this.#buckets.set(app, (bucket = new TokenBucket(rate, rate * 2)))
    }
    if (!bucket.tryTake()) {
      this.stats.overRate++
      logLinesDropped.inc({ app: appLabel.of(app), reason: 'over_rate' })
      return
    }
    const proc = m.procId ? PROCESS.exec(m.procId) : null
    const line: BatchLine = [m.time ?? new Date().toISOString(), m.severity <= 3 ? 1 : 0, sanitizeLine(text)]
    if (proc) line.push(proc[1]!, Number(proc[2]))
    const key = `${app} ${m.hostname ?? ''}`
    let pending = this.#pending.get(key)
    if (!pending) this.#pending.set(key, (pending = { app, origin: m.hostname, lines: [] }))
    pending.lines.push(line)
    this.#flushing ??= setImmediate(() => this.#flush())
  }

  /** Publishes what arrived in this turn of the event loop: a batch per app and sender. */
  #flush(): void {
    if (this.#flushing) clearImmediate(this.#flushing)
    this.#flushing = undefined
    const { logs, log } = this.#opts
    for (const { app, origin, lines } of this.#pending.values()) {
      const batch: LogBatch = { app, source: 'syslog', lines }
      if (origin) batch.origin = origin
      logs.publish(logs.subjects.subjectOf(app, 'syslog'), batch, nuid.next()).then(
        () => (this.stats.published += lines.length),
        (err: unknown) => log.warn({ err, app, lines: lines.length }, 'logger: syslog lines were not stored'),
      )
    }
    this.#pending.clear()
  }
}
