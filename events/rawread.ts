import { connect as tcpConnect, type Socket } from 'node:net'
import type { ConsumerConfig, JetStreamManager } from '@nats-io/jetstream'
import { nuid } from '@nats-io/transport-node'
import { WharfError } from '../core/errors.js'
import { addConsumer, dropReadConsumer, renewReadConsumer, type ReadLog } from './connection.js'

/**
 * The bulk read of a replay over a bare NATS connection: the protocol's few verbs a pull needs
 * (CONNECT, SUB, UNSUB, PUB, PING/PONG, MSG/HMSG) and nothing of nats.js' per-message machinery
 * (a parser that walks every byte of each message's control line and headers, a message object, a
 * queued iterator, delivery info parsed from the reply subject into an object). A replay reads
 * a million messages: that machinery was half the reader thread's CPU.
 *
 * The consumer is made and deleted through nats.js (`jsm`), as every other read; only the messages
 * come this way. Used by the reader thread of `readOffThread` (events/offthread.worker.ts).
 */

/** One message of the log as read: its stream seq, its delivery seq, its body (a view into what the socket read: Node does not reuse that memory). */
export interface RawMessage {
  seq: number
  delivered: number
  data: Uint8Array
}

const CRLF = Buffer.from('\r\n')
/** How long a connection may take to be made and accepted, ms. */
const CONNECT_TIMEOUT_MS = 10_000

/** What the connection hands to the read: a message of a pull, a status that ended one, or the connection's end. */
type Delivery = { kind: 'msg'; sid: number; m: RawMessage } | { kind: 'status'; sid: number; code: number; text: string } | { kind: 'closed'; err: Error }

/**
 * A bare NATS client connection for reading: one server (`nats://host:port`), user and password
 * when the server asks for them. Refuses a server that requires TLS (the caller reads through
 * nats.js then).
 */
export class RawNatsConnection {
  readonly #sock: Socket
  #buf: Buffer = Buffer.alloc(0)
  #nextSid = 1
  #closed: Error | undefined
  #pong: ((err?: Error) => void)[] = []
  /** Where the spaces of a message's line are, and the dots of its reply subject (reused for each message). */
  readonly #spaces = new Int32Array(6)
  readonly #dots = new Int32Array(12)
  /** The seqs {@link #ackInfo} found last. */
  readonly #ack = { seq: 0, delivered: 0 }
  /** Called for every message and status, in the order they arrive. */
  onDelivery: (d: Delivery) => void = () => {}

  private constructor(sock: Socket) {
    this.#sock = sock
  }

  /** Connects and authenticates; resolves once the server answered a PING after CONNECT. */
  static async connect(o: { host: string; port: number; user?: string | undefined; pass?: string | undefined; name: string }): Promise<RawNatsConnection> {
    const sock = tcpConnect({ host: o.host, port: o.port, noDelay: true })
    const c = new RawNatsConnection(sock)
    const timer = setTimeout(() => sock.destroy(new Error(`no answer from NATS at ${o.host}:${o.port} within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS)
    try {
      const info = await new Promise<Record<string, unknown>>((resolve, reject) => {
        let head = Buffer.alloc(0)
        const onData = (chunk: Buffer) => {
          head = Buffer.concat([head, chunk])
          const eol = head.indexOf(CRLF)
          if (eol < 0) return
          sock.off('data', onData)
          sock.off('error', reject)
          sock.pause()
          const line = head.toString('latin1', 0, eol)
          if (!line.startsWith('INFO ')) return reject(new Error(`NATS said ${JSON.stringify(line.slice(0, 80))} instead of INFO`))
          c.#buf = head.subarray(eol + 2)
          resolve(JSON.parse(line.slice(5)) as Record<string, unknown>)
        }
        sock.on('data', onData)
        sock.once('error', reject)
        sock.once('close', () => reject(new Error('NATS closed the connection before INFO')))
      })
      if (info.tls_required === true) throw new Error('the server requires TLS')
      sock.on('data', (chunk: Buffer) => c.#read(chunk))
      sock.on('error', (err) => c.#close(err))
      sock.on('close', () => c.#close(new Error('NATS closed the connection')))
      const connect = {
        verbose: false,
        pedantic: false,
        tls_required: false,
        name: o.name,
        lang: 'wharf-raw',
        version: '1',
        protocol: 1,
        headers: true,
        no_responders: true,
        ...(o.user !== undefined ? { user: o.user } : {}),
        ...(o.pass !== undefined ? { pass: o.pass } : {}),
      }
      const ready = c.#ping()
      sock.write(`CONNECT ${JSON.stringify(connect)}\r\nPING\r\n`)
      sock.resume()
      c.#read(Buffer.alloc(0))
      await ready
      return c
    } catch (err) {
      sock.destroy()
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  /** Why the connection ended, or undefined while it is open. */
  get closed(): Error | undefined {
    return this.#closed
  }

  /** Subscribes to `subject`; answers the subscription id. */
  subscribe(subject: string): number {
    const sid = this.#nextSid++
    this.#sock.write(`SUB ${subject} ${sid}\r\n`)
    return sid
  }

  unsubscribe(sid: number): void {
    if (!this.#closed) this.#sock.write(`UNSUB ${sid}\r\n`)
  }

  publish(subject: string, reply: string, body: string): void {
    const bytes = Buffer.byteLength(body)
    this.#sock.write(`PUB ${subject} ${reply} ${bytes}\r\n${body}\r\n`)
  }

  close(): void {
    this.#sock.destroy()
    this.#close(new Error('closed'))
  }

  #ackInfo(buf: Uint8Array, from: number, to: number): number {
    return ackInfoOf(buf, from, to, this.#dots, this.#ack)
  }

  #ping(): Promise<void> {
    return new Promise<void>((resolve, reject) => this.#pong.push((err) => (err ? reject(err) : resolve())))
  }

  #close(err: Error): void {
    if (this.#closed) return
    this.#closed = err
    for (const p of this.#pong.splice(0)) p(err)
    this.onDelivery({ kind: 'closed', err })
  }

  /** Parses what arrived: whole control lines and whole messages; a part stays for the next chunk. */
  #read(chunk: Buffer): void {
    const buf = this.#buf.length === 0 ? chunk : chunk.length === 0 ? this.#buf : Buffer.concat([this.#buf, chunk])
    let at = 0
    for (;;) {
      const eol = buf.indexOf(CRLF, at)
      if (eol < 0) break
      const op = buf[at]
      if (op === 0x48 || op === 0x4d) {
        // HMSG <subject> <sid> [reply] <header bytes> <total bytes> | MSG <subject> <sid> [reply] <bytes>,
        // read from the bytes: no string is made of a message's line (a replay reads a million of them).
        const headers = op === 0x48
        const spaces = this.#spaces
        let n = 0
        for (let i = at; i < eol && n < spaces.length; i++) if (buf[i] === 0x20) spaces[n++] = i
        const tokens = n + 1
        const withReply = tokens === (headers ? 6 : 5)
        const total = digits(buf, spaces[n - 1]! + 1, eol)
        const headerBytes = headers ? digits(buf, spaces[n - 2]! + 1, spaces[n - 1]!) : 0
        const end = eol + 2 + total
        if (buf.length < end + 2) break
        const sid = digits(buf, spaces[1]! + 1, spaces[2]!)
        // The first header line: `NATS/1.0`, or `NATS/1.0 408 Request Timeout` for a status.
        const hdr = eol + 2
        if (headers && buf[hdr + 8] === 0x20) {
          const hdrEol = buf.indexOf(CRLF, hdr)
          this.onDelivery({ kind: 'status', sid, code: digits(buf, hdr + 9, hdr + 12), text: buf.toString('latin1', hdr + 13, hdrEol) })
        } else if (withReply) {
          const d = this.#ackInfo(buf, spaces[2]! + 1, spaces[3]!)
          if (d >= 0)
            this.onDelivery({ kind: 'msg', sid, m: { seq: this.#ack.seq, delivered: this.#ack.delivered, data: buf.subarray(hdr + headerBytes, end) } })
        }
        at = end + 2
        continue
      }
      const line = buf.toString('latin1', at, eol)
      at = eol + 2
      if (line === 'PING') this.#sock.write('PONG\r\n')
      else if (line === 'PONG') this.#pong.shift()?.()
      else if (line.startsWith('-ERR')) {
        const err = new Error(`NATS: ${line.slice(5)}`)
        // An error before the first PONG (a refused login) fails the connect; after it, the read.
        if (this.#pong.length > 0) for (const p of this.#pong.splice(0)) p(err)
        this.#sock.destroy()
        this.#close(err)
        return
      }
      // +OK, INFO (cluster changes): nothing to do.
    }
    // What is left is the start of the next line or message, kept for the next chunk.
    this.#buf = at >= buf.length ? Buffer.alloc(0) : buf.subarray(at)
  }
}

/** The number written in ASCII digits in `buf[from, to)` (NaN when a byte is not a digit). */
function digits(buf: Uint8Array, from: number, to: number): number {
  if (to <= from) return Number.NaN
  let n = 0
  for (let i = from; i < to; i++) {
    const d = buf[i]! - 0x30
    if (d < 0 || d > 9) return Number.NaN
    n = n * 10 + d
  }
  return n
}

const ACK_PREFIX = Buffer.from('$JS.ACK.')

/**
 * The stream and delivery seqs of a JetStream message from its reply subject `buf[from, to)`:
 * `$JS.ACK.<stream>.<consumer>.<count>.<stream seq>.<delivery seq>.<time>.<pending>`, or with domain
 * and account hash after `ACK` and a token at the end (newer servers), as nats.js reads them.
 * Answers them in `out` (0: found; -1: another subject).
 */
export function ackInfoOf(buf: Uint8Array, from: number, to: number, dots: Int32Array, out: { seq: number; delivered: number }): number {
  if (to - from < ACK_PREFIX.length) return -1
  for (let i = 0; i < ACK_PREFIX.length; i++) if (buf[from + i] !== ACK_PREFIX[i]) return -1
  let n = 0
  for (let i = from; i < to && n < dots.length; i++) if (buf[i] === 0x2e) dots[n++] = i
  const tokens = n + 1
  // Token k is buf[dots[k-1] + 1, dots[k]).
  const base = tokens === 9 ? 5 : tokens >= 11 && tokens <= 12 ? 7 : -1
  if (base < 0) return -1
  out.seq = digits(buf, dots[base - 1]! + 1, dots[base]!)
  out.delivered = digits(buf, dots[base]! + 1, dots[base + 1]!)
  return Number.isNaN(out.seq) || Number.isNaN(out.delivered) ? -1 : 0
}

/** How long a pull may go without a message or status before the read takes a delivery for lost, ms (the pull expires after 5 s). */
const PULL_SILENCE_MS = 10_000
/** At most this many messages are yielded at once. */
const YIELD_EVERY = 1000

/**
 * The messages of `stream` that exist when the read starts, through the ephemeral consumer `config`:
 * what `readExistingBatches` (events/connection.ts) reads, the same way (pulls of `batch`; a jump in
 * the delivery sequence, a pull that ends with nothing or a silence is a lost delivery: the read goes
 * on from the last message through a new consumer), over `raw`. Yields arrays of up to 1000 messages
 * (their `data` views into the socket's reads).
 */
export async function* readExistingRaw(
  jsm: JetStreamManager,
  raw: RawNatsConnection,
  stream: string,
  config: Partial<ConsumerConfig> & { name: string },
  opts: { batch: number; log?: ReadLog | undefined },
): AsyncGenerator<RawMessage[]> {
  let info = await addConsumer(jsm, stream, config, opts.log)
  let name = info.name
  let left = info.num_pending
  let lastSeq: number | undefined
  let lastDelivered = 0
  let restarted = false
  // A queue read from `head` and emptied when read to its end (shift() copies a large array each time).
  let queue: Delivery[] = []
  let head = 0
  let wake: (() => void) | undefined
  raw.onDelivery = (d) => {
    queue.push(d)
    const w = wake
    wake = undefined
    w?.()
  }
  const inbox = `_INBOX.${nuid.next()}`
  try {
    while (left > 0) {
      if (raw.closed) throw new WharfError('WHARF_UNAVAILABLE', `reading ${stream}: ${raw.closed.message}`, { cause: raw.closed })
      const want = Math.min(left, opts.batch)
      const reply = `${inbox}.${name}`
      const sid = raw.subscribe(reply)
      raw.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.${name}`, reply, JSON.stringify({ batch: want, expires: 5_000_000_000 }))
      let got = 0
      let lost = false
      let silent = false
      let pending: RawMessage[] = []
      try {
        pulling: while (got < want) {
          if (head === queue.length) {
            queue = []
            head = 0
            const timer = setTimeout(() => {
              silent = true
              wake?.()
            }, PULL_SILENCE_MS)
            await new Promise<void>((r) => (wake = r))
            clearTimeout(timer)
            if (head === queue.length && silent) throw new WharfError('WHARF_UNAVAILABLE', `no answer to a pull from ${stream} for ${PULL_SILENCE_MS} ms`)
          }
          while (head < queue.length) {
            const d = queue[head++]!
            if (d.kind === 'closed') throw new WharfError('WHARF_UNAVAILABLE', `reading ${stream}: ${d.err.message}`, { cause: d.err })
            if (d.sid !== sid) continue
            if (d.kind === 'status') {
              // 408: the pull expired; 404: nothing (left) to deliver; 409: the consumer went away or the pull was refused.
              if (d.code === 409 && /deleted/i.test(d.text)) throw new WharfError('WHARF_UNAVAILABLE', `reading ${stream}: ${d.code} ${d.text}`)
              if (d.code !== 100) break pulling
              continue
            }
            if (d.m.delivered !== lastDelivered + 1) {
              lost = true
              break pulling
            }
            pending.push(d.m)
            got++
            left--
            lastDelivered = d.m.delivered
            lastSeq = d.m.seq
            if (left === 0) break pulling
            if (pending.length >= YIELD_EVERY) {
              yield pending
              pending = []
            }
          }
        }
      } catch (err) {
        if (restarted && got === 0) throw err
        if (!(err instanceof WharfError) || !/no answer to a pull/.test(err.message)) throw err
        lost = true
      } finally {
        raw.unsubscribe(sid)
      }
      queue = []
      head = 0
      if (pending.length > 0) yield pending
      if (!lost && got > 0) {
        restarted = false
        continue
      }
      if (!lost && restarted) throw new WharfError('WHARF_UNAVAILABLE', `reading ${config.filter_subject ?? stream} stalled with ${left} messages left`)
      opts.log?.warn({ stream, filter: config.filter_subject, after: lastSeq ?? null }, 'a delivery of a read was lost on the way; reading on from there')
      info = await renewReadConsumer(jsm, stream, config, name, lastSeq, opts.log)
      name = info.name
      lastDelivered = 0
      restarted = true
    }
  } finally {
    raw.onDelivery = () => {}
    dropReadConsumer(jsm, stream, name, opts.log)
  }
}
