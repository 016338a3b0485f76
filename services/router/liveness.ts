/**
 * Hosts that went silent: the router's active check of the hosts its peers run on, and what it does
 * when one stops answering.
 *
 * A host that is lost or cut off answers nothing: no refusal, no reset. The balancer copes with new
 * connections (a connect to it times out in 0.5 s and the request goes to another peer, see
 * infra/parts/nginx-lua.ts), but a request nginx sends on a kept-alive connection to it waits for
 * its read timeout (60 s by default), and the client gives up first. So every `intervalMs` the router
 * connects to one peer of each host in turn (a refusal or a reset is an answer: the host lives); after
 * `misses` probes in a row with no answer within `timeoutMs`, it closes every TCP connection to that
 * host's peer ports (`ss -K`, the kernel's sock_destroy, as Envoy's
 * `close_connections_on_host_health_failure` does): nginx sees the error on each and sends its
 * request to another peer (an idempotent one; nginx never resends a POST), and no pooled connection
 * to the host is left to use. A host and its ports are probed until `retainMs` after they left the
 * routes: a container drained off a host keeps the requests sent to it before. Peers on loopback are
 * never checked (their host is this one).
 *
 * Decisions are pure ({@link HostLiveness.observe}); probing and closing are injected, so the unit
 * test drives it without sockets.
 */
import { execFile } from 'node:child_process'
import net from 'node:net'
import type { Logger } from '../../core/log.js'

/** How a probe ended: the host answered (connected, refused, reset) or not within the time. */
export type ProbeResult = 'answered' | 'silent'

export interface HostLivenessOptions {
  /** The peers routed now (`address:port`, `[v6]:port`); undefined: unknown (the last known are kept). */
  peers: () => Iterable<string> | undefined
  log: Logger
  /** How often each host is probed, ms, default 500. */
  intervalMs?: number
  /** How long a probe waits for an answer, ms, default 1_000. */
  timeoutMs?: number
  /** Probes in a row with no answer before the host is taken for silent, default 2. */
  misses?: number
  /**
   * How long a host and its ports are still probed after they left the routes, ms, default 120_000:
   * requests nginx sent before may wait on their connections that long (a drained container's
   * host cut off while they run; an app's proxy timeout is 60 s by default).
   */
  retainMs?: number
  probe?: (host: string, port: number, timeoutMs: number) => Promise<ProbeResult>
  /** Closes this netns' TCP connections to `host` on `ports`. */
  closeConnections?: (host: string, ports: readonly number[]) => Promise<number>
}

interface HostState {
  /** Its ports routed now or lately -> when last seen in the routes (ms, Date.now()). */
  seen: Map<number, number>
  ports: number[]
  /** The next port to probe (index into ports). */
  next: number
  misses: number
  silent: boolean
  probing: boolean
}

/** `address:port` or `[v6]:port` -> host and port; undefined for anything else. */
export function splitPeer(peer: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(peer)
  if (!m) return undefined
  const port = Number(m[3])
  if (port < 1 || port > 65535) return undefined
  return { host: (m[1] ?? m[2])!, port }
}

/** Loopback: this host itself, never probed. */
export function isLoopback(host: string): boolean {
  return host.startsWith('127.') || host === '::1'
}

/** The hosts of `peers` (loopback left out), each with its ports sorted. */
export function hostsOf(peers: Iterable<string>): Map<string, number[]> {
  const out = new Map<string, Set<number>>()
  for (const p of peers) {
    const s = splitPeer(p)
    if (!s || isLoopback(s.host)) continue
    let ports = out.get(s.host)
    if (!ports) out.set(s.host, (ports = new Set()))
    ports.add(s.port)
  }
  return new Map([...out].map(([h, ps]) => [h, [...ps].sort((a, b) => a - b)]))
}

/** One TCP connect: answered when it connects or is refused or reset; silent on a timeout or no route. */
export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let done = false
    const end = (r: ProbeResult) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resolve(r)
    }
    const socket = net.connect({ host, port })
    socket.once('connect', () => end('answered'))
    socket.once('error', (err: NodeJS.ErrnoException) => end(err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET' ? 'answered' : 'silent'))
    // A busy event loop runs timers before the I/O that arrived meanwhile: the verdict waits for the
    // poll phase that follows (setImmediate), so a connect that completed in time is not taken for silence.
    const timer = setTimeout(() => setImmediate(() => end('silent')), timeoutMs)
  })
}

/** `ss -K`: closes the connections of this network namespace to `host` on `ports` (root, CONFIG_INET_DIAG_DESTROY). */
export async function ssKill(host: string, ports: readonly number[]): Promise<number> {
  let closed = 0
  // ss's filter, in chunks so that one command line stays short.
  for (let i = 0; i < ports.length; i += 64) {
    const chunk = ports.slice(i, i + 64)
    const filter = ['dst', host, 'and', '(', ...chunk.flatMap((p, k) => (k === 0 ? ['dport', '=', `:${p}`] : ['or', 'dport', '=', `:${p}`])), ')']
    const out = await new Promise<string>((resolve, reject) =>
      execFile('ss', ['-K', '-t', '-n', '-H', ...filter], { timeout: 5_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
    )
    closed += out.split('\n').filter((l) => l.trim()).length
  }
  return closed
}

export class HostLiveness {
  readonly #o: Required<Omit<HostLivenessOptions, 'log' | 'peers'>> & Pick<HostLivenessOptions, 'log' | 'peers'>
  readonly #hosts = new Map<string, HostState>()
  #timer: NodeJS.Timeout | undefined
  #inflight = new Set<Promise<void>>()
  #stopped = false

  constructor(opts: HostLivenessOptions) {
    this.#o = { intervalMs: 500, timeoutMs: 1_000, misses: 2, retainMs: 120_000, probe: tcpProbe, closeConnections: ssKill, ...opts }
  }

  start(): this {
    this.#timer = setInterval(() => this.tick(), this.#o.intervalMs)
    this.#timer.unref()
    return this
  }

  /** The hosts taken for silent now. */
  silent(): string[] {
    return [...this.#hosts].filter(([, s]) => s.silent).map(([h]) => h)
  }

  /** One round: the host list from the peers, then a probe of each host that has none under way. */
  tick(): void {
    if (this.#stopped) return
    const peers = this.#o.peers()
    if (peers) {
      const at = Date.now()
      for (const [h, ports] of hostsOf(peers)) {
        let s = this.#hosts.get(h)
        if (!s) this.#hosts.set(h, (s = { seen: new Map(), ports: [], next: 0, misses: 0, silent: false, probing: false }))
        for (const p of ports) s.seen.set(p, at)
      }
      // A port (a host) that left the routes lately is still probed: requests sent before may wait on it.
      for (const [h, s] of this.#hosts) {
        for (const [p, t] of s.seen) if (at - t > this.#o.retainMs) s.seen.delete(p)
        if (s.seen.size === 0) this.#hosts.delete(h)
        else s.ports = [...s.seen.keys()].sort((a, b) => a - b)
      }
    }
    for (const [host, s] of this.#hosts) {
      if (s.probing || s.ports.length === 0) continue
      s.probing = true
      const port = s.ports[s.next++ % s.ports.length]!
      const p = this.#o
        .probe(host, port, this.#o.timeoutMs)
        .catch((): ProbeResult => 'answered')
        .then((r) => this.observe(host, r))
        .finally(() => {
          s.probing = false
          this.#inflight.delete(p)
        })
      this.#inflight.add(p)
    }
  }

  /** A probe's result for `host`: counts misses; the first time they reach `misses`, its connections are closed. */
  async observe(host: string, r: ProbeResult): Promise<void> {
    const s = this.#hosts.get(host)
    if (!s || this.#stopped) return
    const log = this.#o.log
    if (r === 'answered') {
      if (s.silent) log.info({ host }, 'router: a host answers again')
      s.misses = 0
      s.silent = false
      return
    }
    s.misses++
    if (s.silent || s.misses < this.#o.misses) return
    s.silent = true
    const ports = [...s.ports]
    try {
      const closed = await this.#o.closeConnections(host, ports)
      log.warn(
        { host, probes: s.misses, timeoutMs: this.#o.timeoutMs, closed },
        'router: a host answers no connection; its connections are closed so that their requests go to other peers',
      )
    } catch (err) {
      log.warn(
        { err, host },
        'router: a host answers no connection, and its connections cannot be closed (ss -K needs root); requests on them wait for their timeout',
      )
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#timer)
    await Promise.allSettled([...this.#inflight])
  }
}
