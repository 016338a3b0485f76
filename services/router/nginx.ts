/**
 * The nginx side of the router: writes conf.d/wharf-routes.conf atomically, checks the whole config
 * with `nginx -t`, reloads the master (SIGHUP) and waits until nginx answers with the new config. A
 * failed check puts the last good file back (nginx keeps serving what it had). A dead master is
 * started again with the current file.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import type { Logger } from '../../core/log.js'
import { isAlive, readPid } from '../../core/proc.js'
import type { TableCert } from './model.js'
import { PROBE_HOST, ROUTES_FILE, type TlsCert } from './render.js'

const execFileP = promisify(execFile)

/** Where nginx's files are (core/paths.ts `paths.nginx`). */
export interface NginxPaths {
  /** The `-p` prefix. */
  dir: string
  /** The base config (`-c`), which includes `conf.d/*.conf`. */
  conf: string
  confd: string
  /** Where the router writes the certificates and keys nginx reads. */
  certs: string
  pid: string
  log: string
}

export interface NginxOptions {
  paths: NginxPaths
  /** `127.0.0.1:<router port>`, where the probe asks which config is served. */
  probe: { host: string; port: number }
  log: Logger
  /** Starts nginx when its master is gone (the router passes infra's nginx start). */
  start: () => Promise<void>
  /** How long nginx may take to serve a new config after SIGHUP, ms, default 5_000. */
  reloadTimeoutMs?: number
  /** The `nginx` binary, default `nginx`. */
  bin?: string
}

export type ApplyResult = { ok: true; checkMs: number; reloadMs: number; restarted: boolean } | { ok: false; reason: string }

export class Nginx {
  readonly #o: NginxOptions
  readonly #file: string
  /** The text of the routes file nginx last accepted (undefined: none written by this router yet). */
  #lastGood: string | undefined
  /** Workers of replaced configs that may still take new connections (see {@link settled}). */
  #retiring: number[] = []

  constructor(opts: NginxOptions) {
    this.#o = opts
    this.#file = join(opts.paths.confd, ROUTES_FILE)
    try {
      // What a previous router left: the fallback until this one writes a good file.
      this.#lastGood = readFileSync(this.#file, 'utf8')
    } catch {
      this.#lastGood = undefined
    }
  }

  /** The live pid of the nginx master, if any. */
  masterPid(): number | undefined {
    const pid = readPid(this.#o.paths.pid)
    return pid && isAlive(pid) ? pid : undefined
  }

  /**
   * Writes `text` (which must contain the probe server answering `generation`), checks, reloads and
   * waits until nginx answers `generation` on a new connection: the new routes are in use. Workers of
   * the old config still take some new connections for about 100 ms (nginx starts the new workers,
   * sleeps 100 ms, then tells the old ones to stop accepting); {@link settled} waits for that. On a
   * failed check the last good file is back in place.
   */
  async apply(text: string, generation: number): Promise<ApplyResult> {
    mkdirSync(this.#o.paths.confd, { recursive: true })
    this.#write(text)
    const t0 = performance.now()
    const check = await this.check()
    const checkMs = performance.now() - t0
    if (!check.ok) {
      this.#restore()
      return { ok: false, reason: check.reason }
    }
    this.#lastGood = text
    const t1 = performance.now()
    let restarted = false
    const pid = this.masterPid()
    if (pid) {
      this.#retiring.push(...workersOf(pid))
      process.kill(pid, 'SIGHUP')
    } else {
      this.#o.log.warn({ pidfile: this.#o.paths.pid }, 'router: nginx is not running; starting it with the current routes')
      await this.#o.start()
      restarted = true
    }
    const served = await this.#waitServed(generation)
    if (!served) return { ok: false, reason: `nginx did not serve the new config within ${this.#o.reloadTimeoutMs ?? 5_000} ms (see ${this.#o.paths.log})` }
    return { ok: true, checkMs, reloadMs: performance.now() - t1, restarted }
  }

  /** `nginx -t` of the whole config, as infra runs nginx (`-e`, `-p`, `-c`). */
  async check(): Promise<{ ok: true } | { ok: false; reason: string }> {
    const p = this.#o.paths
    try {
      await execFileP(this.#o.bin ?? 'nginx', ['-e', p.log, '-p', p.dir, '-c', p.conf, '-t', '-q'], { timeout: 30_000 })
      return { ok: true }
    } catch (err) {
      const e = err as { stderr?: string; message: string }
      return { ok: false, reason: (e.stderr || e.message).trim().slice(0, 2000) }
    }
  }

  /** The generation the probe server answers (undefined: no answer). */
  probe(timeoutMs = 1_000): Promise<number | undefined> {
    return new Promise((resolve) => {
      // A new connection each time: a kept-alive one may still be held by a worker of the old config.
      const req = httpRequest(
        { host: this.#o.probe.host, port: this.#o.probe.port, path: '/', headers: { host: PROBE_HOST }, agent: false, timeout: timeoutMs },
        (res) => {
          let body = ''
          res.setEncoding('utf8')
          res.on('data', (c: string) => (body += c))
          res.on('end', () => resolve(res.statusCode === 200 && /^\d+\n$/.test(body) ? Number(body.trim()) : undefined))
          res.on('error', () => resolve(undefined))
        },
      )
      req.on('timeout', () => req.destroy())
      req.on('error', () => resolve(undefined))
      req.end()
    })
  }

  /** Until a new connection gets the config of `generation`. */
  async #waitServed(generation: number): Promise<boolean> {
    const deadline = Date.now() + (this.#o.reloadTimeoutMs ?? 5_000)
    for (let i = 0; ; i++) {
      if ((await this.probe()) === generation) return true
      if (Date.now() > deadline) return false
      await sleep(i < 100 ? 2 : 20)
    }
  }

  /**
   * Resolves once no worker of a replaced config takes new connections: after it, a route removed
   * (a drained container) gets no new request at all. Old and new workers share the listening socket
   * for about 100 ms after a reload. False when some still did after `timeoutMs`.
   */
  async settled(timeoutMs = 5_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      this.#retiring = this.#retiring.filter((pid) => !retired(pid))
      if (this.#retiring.length === 0) return true
      if (Date.now() > deadline) return false
      await sleep(5)
    }
  }

  /**
   * Writes each certificate's chain and key (`<id>.crt`, `<id>.key`, mode 600 in a folder of mode
   * 700: only the root nginx master reads them) unless already there, and answers what the TLS
   * server blocks name. The id is a hash of both, so a file never changes once written.
   */
  writeCerts(certs: readonly TableCert[]): TlsCert[] {
    const dir = this.#o.paths.certs
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    return certs.map((c) => {
      const [certFile, keyFile] = [join(dir, `${c.id}.crt`), join(dir, `${c.id}.key`)]
      for (const [file, text] of [
        [certFile, c.certificate],
        [keyFile, c.key],
      ] as const) {
        if (existsSync(file)) continue
        const tmp = `${file}.tmp`
        writeFileSync(tmp, text, { mode: 0o600 })
        renameSync(tmp, file)
      }
      return { domains: c.domains, certFile, keyFile }
    })
  }

  /** Removes the certificate files no longer named by the config nginx serves. */
  pruneCerts(keep: readonly TlsCert[]): void {
    const names = new Set(keep.flatMap((c) => [c.certFile, c.keyFile]))
    let files: string[]
    try {
      files = readdirSync(this.#o.paths.certs)
    } catch {
      return
    }
    for (const f of files) {
      const path = join(this.#o.paths.certs, f)
      if (!names.has(path)) rmSync(path, { force: true })
    }
  }

  #write(text: string): void {
    const tmp = join(this.#o.paths.confd, `.${ROUTES_FILE}.tmp`)
    writeFileSync(tmp, text)
    renameSync(tmp, this.#file)
  }

  #restore(): void {
    if (this.#lastGood === undefined) rmSync(this.#file, { force: true })
    else this.#write(this.#lastGood)
  }
}

/** The worker processes of an nginx master (children whose title says `worker process`). */
export function workersOf(master: number): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === master && readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('worker process')) out.push(Number(name))
    } catch {
      // Gone meanwhile.
    }
  }
  return out
}

/**
 * True when an old worker takes no new connections: it exited, or it is shutting down (nginx sets
 * that title in the same step that closes its listening sockets).
 */
function retired(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('shutting down') || !isAlive(pid)
  } catch {
    return true
  }
}
