import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net'

/** One NATS protocol frame: its control line (without CRLF) and all its bytes (with the payload, if any). */
export interface Frame {
  line: string
  bytes: Buffer
}

/** Decides what happens to a frame: pass it, drop it, or (client to server only) cut the connection inside it. */
export type FrameRule = (frame: Frame) => 'pass' | 'drop' | { cutAt: number }

const CRLF = Buffer.from('\r\n')

/**
 * A TCP proxy between NATS clients and a nats-server (127.0.0.1 only), for tests that lose things on
 * the wire: it parses the protocol frames of both directions and lets a rule drop a frame (a delivery
 * the server sent and the client never saw) or cut the connection in the middle of one (a writer
 * that died while publishing). Everything else passes byte for byte.
 */
export class NatsProxy {
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  /** Server-to-client frames (MSG, HMSG, INFO, PING, ...). */
  toClient: FrameRule = () => 'pass'
  /** Client-to-server frames (PUB, HPUB, SUB, CONNECT, ...). */
  toServer: FrameRule = () => 'pass'
  /** Called after a `cutAt` rule cut a connection (both sockets are destroyed). */
  onCut: () => void = () => {}

  private constructor(
    server: Server,
    readonly url: string,
  ) {
    this.#server = server
  }

  /** Listens on a free port of 127.0.0.1, forwarding to `target` (`nats://127.0.0.1:4222`). */
  static async start(target: string): Promise<NatsProxy> {
    const to = new URL(target)
    let proxy: NatsProxy | undefined
    const server = createServer((client) => proxy!.#accept(client, to.hostname, Number(to.port || 4222)))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', resolve)
    })
    const { port } = server.address() as { port: number }
    // The target's user and password (the platform's NATS requires them) go on in the proxy's URL.
    const auth = to.username ? `${to.username}${to.password ? `:${to.password}` : ''}@` : ''
    proxy = new NatsProxy(server, `nats://${auth}127.0.0.1:${port}`)
    return proxy
  }

  /** Destroys every proxied connection (the clients reconnect, through the proxy, if they do). */
  dropConnections(): void {
    for (const s of this.#sockets) s.destroy()
  }

  async close(): Promise<void> {
    this.dropConnections()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #accept(client: Socket, host: string, port: number): void {
    const upstream = tcpConnect(port, host)
    for (const s of [client, upstream]) {
      this.#sockets.add(s)
      s.on('close', () => {
        this.#sockets.delete(s)
        client.destroy()
        upstream.destroy()
      })
      s.on('error', () => {})
    }
    const cut = () => {
      client.destroy()
      upstream.destroy()
      this.onCut()
    }
    client.on(
      'data',
      frames((f) => this.toServer(f), upstream, cut),
    )
    upstream.on(
      'data',
      frames((f) => this.toClient(f), client, cut),
    )
  }
}

/**
 * The stream sequence of a first delivery (not a redelivery) to consumer `durable` (any consumer when
 * omitted) of `stream`, read from its `$JS.ACK` reply subject; undefined for any other frame.
 */
export function firstDeliveryOf(f: Frame, stream: string, durable?: string): number | undefined {
  if (!f.line.startsWith('MSG ') && !f.line.startsWith('HMSG ')) return undefined
  const reply = f.line.split(' ').find((w) => w.startsWith('$JS.ACK.'))
  const tokens = reply?.split('.') ?? []
  const at = tokens.indexOf(stream)
  if (at < 0 || (durable !== undefined && tokens[at + 1] !== durable) || tokens[at + 2] !== '1') return undefined
  return Number(tokens[at + 3])
}

/** The stream sequence of the message a `STREAM.MSG.GET` answers with (a `MSG` to the asker's inbox), if `f` is one. */
export function messageGetReplyOf(f: Frame): number | undefined {
  if (!f.line.startsWith('MSG ')) return undefined
  const body = f.bytes.subarray(f.bytes.indexOf(CRLF) + 2, f.bytes.length - 2).toString('utf8')
  if (!body.includes('"io.nats.jetstream.api.v1.stream_msg_get_response"')) return undefined
  try {
    return (JSON.parse(body) as { message?: { seq?: number } }).message?.seq
  } catch {
    return undefined
  }
}

/** A `data` handler that splits a byte stream into frames and forwards each as `rule` says. */
function frames(rule: FrameRule, out: Socket, cut: () => void): (chunk: Buffer) => void {
  let buf: Buffer = Buffer.alloc(0)
  let dead = false
  return (chunk) => {
    if (dead) return
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk
    for (;;) {
      const eol = buf.indexOf(CRLF)
      if (eol < 0) return
      const line = buf.subarray(0, eol).toString('latin1')
      const size = payloadSize(line)
      const total = eol + 2 + (size === undefined ? 0 : size + 2)
      if (buf.length < total) return
      const frame = { line, bytes: buf.subarray(0, total) }
      buf = buf.subarray(total)
      const verdict = rule(frame)
      if (verdict === 'drop') continue
      if (verdict === 'pass') {
        out.write(frame.bytes)
        continue
      }
      dead = true
      out.write(frame.bytes.subarray(0, verdict.cutAt), () => setTimeout(cut, 50))
      return
    }
  }
}

/** The payload size of a frame with one (MSG, HMSG, PUB, HPUB: the last number of the line), else undefined. */
function payloadSize(line: string): number | undefined {
  const op = line.slice(0, line.indexOf(' ')).toUpperCase()
  if (op !== 'MSG' && op !== 'HMSG' && op !== 'PUB' && op !== 'HPUB') return undefined
  return Number(line.slice(line.lastIndexOf(' ') + 1))
}
