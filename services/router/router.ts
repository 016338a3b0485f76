/**
 * The router's reconcile loop: read models -> route table -> nginx config -> check and reload.
 * Changes are coalesced: a render starts at once when none ran in the last `windowMs`, otherwise at
 * the end of that window, and never two at once; everything asked meanwhile is in the next one.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import type { Logger } from '../../core/log.js'
import { allDomains, attachedCerts, currentConfigs, liveApps, maintenanceApps, webContainers } from '../../projections/index.js'
import type { ServedContainer } from '../../domain/platform/events.js'
import { routeTable, servedChanges, servedSets, type RouteRows, type RouteTable, type ServedSets } from './model.js'
import type { ApplyResult, Nginx } from './nginx.js'
import { renderRoutes, type RenderOptions } from './render.js'

export interface RouterOptions {
  pool: pg.Pool
  nginx: Nginx
  log: Logger
  /** The platform domain (`<app>.<domain>`). */
  domain: string
  /** The largest body any app may take (`WHARF_MAX_BODY_SIZE_CAP`); omitted: no cap. */
  maxBodySizeCap?: string
  /** Render options but the generation and the TLS certificates (set per render). */
  render: Omit<RenderOptions, 'generation' | 'tls'>
  /** The HTTPS port (`127.0.0.1:<port>`, by SNI); omitted: attached certificates are not served. */
  tlsPort?: number
  /** At most one render per window, ms, default 20. */
  windowMs?: number
  /** For tests: changes the rendered text before it is written (e.g. to make `nginx -t` fail). */
  transform?: (text: string) => string
  /** Told after each render that reached nginx (or failed to); `asked` = when the oldest change it covers was asked for (ms epoch). */
  onApplied?: (info: { result: ApplyResult | { ok: 'unchanged' }; asked: number; done: number; table: RouteTable }) => void
  /** What each app was last recorded as served on (from the log, so a restarted router does not record it again). */
  served?: ServedSets
  /**
   * Records the apps whose served containers changed, once the change is live (nginx answers the
   * new routes and no old worker takes new connections). A throw keeps the change pending: it is
   * recorded after the next render.
   */
  onServed?: (changes: { app: string; servers: ServedContainer[] }[]) => Promise<void>
}

/** Reads what the route table is built from, in one consistent snapshot. */
export async function readRows(pool: pg.Pool): Promise<RouteRows> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    const [apps, domains, containers, maintenance, releases, certs] = [
      await liveApps(client),
      await allDomains(client),
      await webContainers(client),
      await maintenanceApps(client),
      await currentConfigs(client),
      await attachedCerts(client),
    ]
    await client.query('COMMIT')
    return { apps, domains, containers, maintenance, releases, certs }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}

export class Router {
  readonly #o: RouterOptions
  readonly #windowMs: number
  /** When the oldest change not yet rendered was asked for (undefined: nothing pending). */
  #pendingSince: number | undefined
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #lastStart = 0
  /** The text (without the probe) nginx last accepted. */
  #applied: string | undefined
  /** Config generations: unique across router restarts (the probe must not match an older router's). */
  #generation = Date.now()
  #stopped = false
  /** Renders again when the first served certificate expires. */
  #expiry: NodeJS.Timeout | undefined
  /** Renders that failed since the last good one. */
  failures = 0
  /** What each app is recorded as served on. */
  #served: ServedSets
  /** A render again after a record that failed (only one pending). */
  #retry: NodeJS.Timeout | undefined

  constructor(opts: RouterOptions) {
    this.#o = opts
    this.#windowMs = opts.windowMs ?? 20
    this.#served = opts.served ?? new Map()
  }

  /** Asks for a render (coalesced). */
  kick(asked = Date.now()): void {
    if (this.#stopped) return
    this.#pendingSince ??= asked
    if (this.#running || this.#timer) return
    const wait = Math.max(0, this.#lastStart + this.#windowMs - Date.now())
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#running = this.#loop().finally(() => (this.#running = undefined))
    }, wait)
  }

  /** Renders now (after any render under way) and resolves when it is applied. */
  async sync(): Promise<void> {
    this.kick()
    await this.idle()
  }

  /** Resolves when nothing is pending or rendering, and no nginx worker of an older config takes new connections. */
  async idle(): Promise<void> {
    while (this.#timer || this.#running || (this.#pendingSince !== undefined && !this.#stopped)) {
      if (this.#running) await this.#running
      else await sleep(this.#windowMs)
    }
    await this.#o.nginx.settled()
  }

  /** Forgets the applied text: the next render writes and reloads even if nothing changed (nginx restarted). */
  invalidate(): void {
    this.#applied = undefined
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    clearTimeout(this.#expiry)
    clearTimeout(this.#retry)
    this.#timer = undefined
    await this.#running
  }

  async #loop(): Promise<void> {
    while (this.#pendingSince !== undefined && !this.#stopped) {
      const wait = this.#lastStart + this.#windowMs - Date.now()
      if (wait > 0) await sleep(wait)
      const asked = this.#pendingSince
      this.#pendingSince = undefined
      this.#lastStart = Date.now()
      try {
        await this.#once(asked)
      } catch (err) {
        this.failures++
        this.#o.log.error({ err }, 'router: cannot render the routes; continuing with the existing configuration')
      }
    }
  }

  /** A render once the first of these instants (ms epoch) still ahead has passed (at most 24 days ahead: setTimeout's bound). */
  #renderAtExpiry(instants: readonly number[]): void {
    clearTimeout(this.#expiry)
    const now = Date.now()
    const next = Math.min(...instants.filter((t) => t > now))
    if (!Number.isFinite(next)) return
    this.#expiry = setTimeout(() => this.kick(), Math.min(next - now + 1_000, 24 * 24 * 3600_000))
    this.#expiry.unref()
  }

  async #once(asked: number): Promise<void> {
    const rows = await readRows(this.#o.pool)
    const table = routeTable(rows, { domain: this.#o.domain, now: Date.now(), ...(this.#o.maxBodySizeCap ? { maxBodySizeCap: this.#o.maxBodySizeCap } : {}) })
    this.#renderAtExpiry(rows.certs.map((c) => Date.parse(c.notAfter)))
    const nginx = this.#o.nginx
    const tlsCerts = this.#o.tlsPort ? nginx.writeCerts(table.certs) : []
    const render = { ...this.#o.render, ...(this.#o.tlsPort ? { tls: { port: this.#o.tlsPort, certs: tlsCerts } } : {}) }
    const { text: body, dropped } = renderRoutes(table, render)
    for (const d of [...table.dropped, ...dropped]) this.#o.log.warn(d, 'router: left out of the routes')
    if (body === this.#applied && nginx.masterPid()) {
      await this.#record(rows, table)
      this.#o.onApplied?.({ result: { ok: 'unchanged' }, asked, done: Date.now(), table })
      return
    }
    const generation = ++this.#generation
    let { text } = renderRoutes(table, { ...render, generation })
    if (this.#o.transform) text = this.#o.transform(text)
    const result = await nginx.apply(text, generation)
    const done = Date.now()
    if (result.ok) {
      this.#applied = body
      this.failures = 0
      nginx.pruneCerts(tlsCerts)
      this.#o.log.info(
        {
          apps: table.routes.length,
          tls: tlsCerts.length,
          servers: table.routes.reduce((n, r) => n + r.servers.length, 0),
          checkMs: Math.round(result.checkMs),
          reloadMs: Math.round(result.reloadMs),
          sinceAskedMs: done - asked,
          restarted: result.restarted,
        },
        'router: routes reloaded',
      )
      await this.#record(rows, table)
    } else {
      this.failures++
      this.#o.log.error(
        { reason: result.reason },
        'router: nginx refused the new routes; continuing with the existing configuration (retried on the next change)',
      )
    }
    this.#o.onApplied?.({ result, asked, done, table })
  }

  /** Records what changed in the served sets, once live; on failure, tries again with a render in a second. */
  async #record(rows: RouteRows, table: RouteTable): Promise<void> {
    const onServed = this.#o.onServed
    if (!onServed) return
    const served = servedSets(rows, table)
    const changes = servedChanges(this.#served, served)
    if (changes.length === 0) {
      this.#served = served
      return
    }
    // Recorded once no worker of the old config takes new connections: from the event on, every new request reaches these containers.
    await this.#o.nginx.settled()
    try {
      await onServed(changes)
      this.#served = served
    } catch (err) {
      this.#o.log.warn({ err, apps: changes.map((c) => c.app) }, 'router: cannot record what it serves; trying again after the next render')
      if (!this.#retry && !this.#stopped) {
        this.#retry = setTimeout(() => {
          this.#retry = undefined
          this.kick()
        }, 1_000)
        this.#retry.unref()
      }
    }
  }
}
