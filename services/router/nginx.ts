/**
 * The nginx side of the router: posts change sets to nginx's admin server (a unix socket, see
 * infra/parts/nginx-lua.ts) and reads back the epoch of the last full set. No config file is
 * written and nginx is never reloaded for a change of routes: the answer to a post means every
 * worker serves the change.
 */
import { Agent, request as httpRequest } from 'node:http'
import type { Logger } from '../../core/log.js'
import { isAlive, readPid } from '../../core/proc.js'
import type { ChangeSet } from './changes.js'

/** Where nginx's files are (core/paths.ts `paths.nginx`) and its admin socket. */
export interface NginxPaths {
  pid: string
  log: string
}

export interface NginxOptions {
  paths: NginxPaths
  /** The admin server's unix socket (infra's `adminSocket`). */
  socket: string
  log: Logger
  /** How long a post may take, ms, default 10_000. */
  timeoutMs?: number
}

/**
 * Where a post's time went, ms: the change set made into JSON, sent until nginx's worker began on it
 * (`toNginx`: the wait for that worker to run; ms resolution, nginx's clock), nginx at work
 * (`inNginx`, and `nginxCpu`: its worker's CPU meanwhile), its answer until read here (`back`).
 */
export interface ApplySteps {
  encode: number
  toNginx: number
  inNginx: number
  nginxCpu: number
  back: number
}

/** A post's outcome: `unreachable` when nginx did not answer (not running, restarting). */
export type ApplyResult = { ok: true; applyMs: number; changed: number; steps?: ApplySteps } | { ok: false; reason: string; code: string; unreachable: boolean }

export class Nginx {
  readonly #o: NginxOptions
  /**
   * One kept-alive connection to the admin socket: a post needs no connect and accept (the watchdog's
   * `GET /epoch` every second keeps it open). A post on a kept connection that nginx closed meanwhile
   * (a reload retires its worker) is sent again on a new one.
   */
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 })

  constructor(opts: NginxOptions) {
    this.#o = opts
  }

  /** Closes the kept-alive connection. */
  close(): void {
    this.#agent.destroy()
  }

  /** The live pid of the nginx master, if any. */
  masterPid(): number | undefined {
    const pid = readPid(this.#o.paths.pid)
    return pid && isAlive(pid) ? pid : undefined
  }

  /**
   * Posts a change set; resolves once nginx answered (live in every worker) or refused it. nginx not
   * running is `unreachable`: this client never starts it (its supervisor does, see service.ts).
   */
  async apply(cs: ChangeSet): Promise<ApplyResult> {
    const t0 = performance.now()
    const text = JSON.stringify(cs)
    const encoded = performance.now()
    const sentAt = Date.now()
    const res = await this.#call('POST', '/changes', text)
    const backAt = Date.now()
    if (!res) return { ok: false, reason: `nginx's admin socket ${this.#o.socket} did not answer`, code: 'WHARF_ROUTER_UNREACHABLE', unreachable: true }
    let body: { ok?: boolean; changed?: number; code?: string; message?: string; at?: number; done?: number; cpu?: number } = {}
    try {
      body = JSON.parse(res.body)
    } catch {
      // Not JSON: nginx's own error page.
    }
    if (res.status !== 200 || body.ok !== true) {
      return { ok: false, reason: body.message ?? `${res.status} ${res.body.slice(0, 200)}`, code: body.code ?? 'WHARF_ROUTER_REFUSED', unreachable: false }
    }
    const applyMs = performance.now() - t0
    const { at, done, cpu } = body
    const steps =
      typeof at === 'number' && typeof done === 'number' && typeof cpu === 'number'
        ? { encode: encoded - t0, toNginx: Math.max(0, at - sentAt), inNginx: done - at, nginxCpu: cpu, back: Math.max(0, backAt - done) }
        : undefined
    return { ok: true, applyMs, changed: body.changed ?? 0, ...(steps ? { steps } : {}) }
  }

  /** The epoch of the last full change set nginx holds (null: none, an empty dict; undefined: no answer). */
  async epoch(timeoutMs = 2_000): Promise<string | null | undefined> {
    const res = await this.#call('GET', '/epoch', undefined, timeoutMs)
    if (res?.status !== 200) return undefined
    try {
      const v = JSON.parse(res.body) as { epoch?: string | null }
      return v.epoch ?? null
    } catch {
      return undefined
    }
  }

  #call(
    method: string,
    path: string,
    body: string | undefined,
    timeoutMs = this.#o.timeoutMs ?? 10_000,
    again = true,
  ): Promise<{ status: number; body: string } | undefined> {
    return new Promise((resolve) => {
      const req = httpRequest(
        {
          socketPath: this.#o.socket,
          method,
          path,
          headers: { host: 'wharf-admin', ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}) },
          agent: this.#agent,
          timeout: timeoutMs,
        },
        (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (c: string) => {
            if (text.length < 1_000_000) text += c
          })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
          res.on('error', () => resolve(undefined))
        },
      )
      req.on('timeout', () => req.destroy())
      req.on('error', (err: NodeJS.ErrnoException) => {
        // A kept connection nginx closed before it read this request: nothing of it was applied.
        if (again && req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) resolve(this.#call(method, path, body, timeoutMs, false))
        else resolve(undefined)
      })
      req.end(body)
    })
  }
}
