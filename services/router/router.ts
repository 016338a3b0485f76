/**
 * The router's reconcile loop: read models -> route table -> dict state -> change set (the
 * difference with what nginx holds) -> posted to nginx's admin socket, no reload. Changes are
 * coalesced: a pass starts at once when none ran in the last `windowMs`, otherwise at the end of
 * that window, and never two at once; everything asked meanwhile is in the next one. The first pass,
 * and the first after nginx restarted (its epoch is not this router's), posts the `full` table.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import type { Logger } from '../../core/log.js'
import { routeUpdateDuration, routeUpdates } from '../../core/metrics.js'
import { allDomains, attachedCerts, currentConfigs, liveApps, maintenanceApps, webContainers } from '../../projections/index.js'
import type { ServedContainer } from '../../domain/platform/events.js'
import { randomBytes, X509Certificate, createPrivateKey } from 'node:crypto'
import { diff, dictState, fullSet, isEmpty, type CertEntry, type ChangeSet, type DictState } from './changes.js'
import { routeTable, servedChanges, servedSets, type RouteRows, type RouteTable, type ServedSets } from './model.js'
import type { ApplyResult, Nginx } from './nginx.js'

export interface RouterOptions {
  pool: pg.Pool
  nginx: Nginx
  log: Logger
  /** The platform domain (`<app>.<domain>`). */
  domain: string
  /** Host names nginx answers itself (`wharf.<domain>`): no app's route takes them. */
  reserved?: readonly string[]
  /** The largest body any app may take (`WHARF_MAX_BODY_SIZE_CAP`); omitted: no cap. */
  maxBodySizeCap?: string
  /** At most one pass per window, ms, default 20. */
  windowMs?: number
  /** For tests: changes a change set before it is posted (e.g. to make nginx refuse it). */
  transform?: (cs: ChangeSet) => ChangeSet
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
  /** What nginx's dict holds, as far as this router knows (undefined: unknown, post the full table). */
  #applied: DictState | undefined
  /** The epoch of this router's last full set: nginx answering another one restarted (or another router wrote). */
  #epoch: string | undefined
  /** Certificates checked with node:crypto, by id (chain and key hash): true when they parse. */
  #certsChecked = new Map<string, boolean>()
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

  /** Resolves when nothing is pending or being applied. */
  async idle(): Promise<void> {
    while (this.#timer || this.#running || (this.#pendingSince !== undefined && !this.#stopped)) {
      if (this.#running) await this.#running
      else await sleep(this.#windowMs)
    }
  }

  /** The epoch of the last full table this router posted (undefined: none yet). */
  get epoch(): string | undefined {
    return this.#epoch
  }

  /** Forgets what nginx holds: the next pass posts the full table (nginx restarted). */
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
    const { state, dropped } = dictState(table, { reserved: this.#o.reserved ?? [], certOk: (id, c) => this.#certOk(id, c) })
    for (const d of [...table.dropped, ...dropped]) this.#o.log.warn(d, 'router: left out of the routes')
    const before = this.#applied
    let cs: ChangeSet = before && nginx.masterPid() ? diff(before, state) : fullSet(state, `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`)
    if (isEmpty(cs)) {
      await this.#record(rows, table)
      routeUpdates.inc({ result: 'unchanged' })
      this.#o.onApplied?.({ result: { ok: 'unchanged' }, asked, done: Date.now(), table })
      return
    }
    if (this.#o.transform) cs = this.#o.transform(cs)
    const result = await nginx.apply(cs)
    const done = Date.now()
    if (result.ok) {
      this.#applied = state
      if (cs.full) this.#epoch = cs.epoch
      this.failures = 0
      this.#o.log.info(
        {
          full: cs.full === true,
          apps: Object.keys(cs.apps ?? {}).length,
          hosts: Object.keys(cs.hosts ?? {}).length,
          certs: Object.keys(cs.certs ?? {}).length,
          changed: result.changed,
          applyMs: Math.round(result.applyMs * 10) / 10,
          sinceAskedMs: done - asked,
        },
        'router: routes changed',
      )
      await this.#record(rows, table)
    } else {
      this.failures++
      // Unreachable: nginx may have restarted with an empty dict; the next pass posts the full table.
      if (result.unreachable) this.#applied = undefined
      this.#o.log.error(
        { reason: result.reason, code: result.code, full: cs.full === true },
        'router: nginx refused the change set; continuing with the routes it has (retried on the next change)',
      )
    }
    const outcome = result.ok ? 'applied' : 'failed'
    routeUpdates.inc({ result: outcome })
    routeUpdateDuration.observe({ result: outcome }, Math.max(0, done - asked) / 1000)
    this.#o.onApplied?.({ result, asked, done, table })
  }

  /** True when chain and key parse (checked once per id: the id is their hash). */
  #certOk(id: string, c: CertEntry): boolean {
    let ok = this.#certsChecked.get(id)
    if (ok === undefined) {
      try {
        new X509Certificate(c.c)
        createPrivateKey(c.k)
        ok = true
      } catch {
        ok = false
      }
      if (this.#certsChecked.size > 10_000) this.#certsChecked.clear()
      this.#certsChecked.set(id, ok)
    }
    return ok
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
    // Recorded once nginx answered: from the event on, every new request reaches these containers.
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
