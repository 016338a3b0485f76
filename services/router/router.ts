/**
 * The router's reconcile loop: read models -> route table -> dict state -> change set (the
 * difference with what nginx holds) -> posted to nginx's admin socket, no reload. A pass covers the
 * apps asked for: it reads their rows alone into the rows it keeps in memory and builds their routes
 * (and those of apps whose host-name claims they touch), so its cost follows the change, not the
 * number of apps. Passes never run two at once; everything asked meanwhile is in the next one (no
 * timer: a pass starts as soon as the previous one ended). The first pass, one asked for with no
 * app, and the first after nginx restarted (its epoch is not this router's) read everything; the
 * last two post the `full` table.
 */
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type pg from 'pg'
import type { Logger } from '../../core/log.js'
import { routeUpdateDuration, routeUpdates } from '../../core/metrics.js'
import { allDomains, attachedCerts, currentConfigs, liveApps, maintenanceApps, webContainers } from '../../projections/index.js'
import type { ServedContainer } from '../../domain/platform/events.js'
import { randomBytes, X509Certificate, createPrivateKey } from 'node:crypto'
import { contributions, DictContents, fullSet, isEmpty, type AppContribution, type CertEntry, type ChangeSet } from './changes.js'
import { RowIndex, servedChanges, servedSets, type DirectChange, type RouteRows, type RouteTable, type ServedSets } from './model.js'
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
  /** At least this long between the starts of two passes, ms, default 0 (a pass starts when the previous one ended). */
  windowMs?: number
  /**
   * Runs before everything is read (not on the first pass): e.g. waits until the containers and
   * domains read models have the changes this router applied from their events ({@link Router.applyDirect}).
   */
  beforeFullRead?: () => Promise<void>
  /** For tests: changes a change set before it is posted (e.g. to make nginx refuse it). */
  transform?: (cs: ChangeSet) => ChangeSet
  /**
   * Told after each render that reached nginx (or failed to); `asked` = when the oldest change it
   * covers was asked for (ms epoch); `table`: the routes of the apps the pass covered (all on a full pass).
   */
  onApplied?: (info: { result: ApplyResult | { ok: 'unchanged' }; asked: number; done: number; table: RouteTable; full: boolean }) => void
  /** What each app was last recorded as served on (from the log, so a restarted router does not record it again). */
  served?: ServedSets
  /**
   * Records the apps whose served containers changed, once the change is live (nginx answers the
   * new routes and no old worker takes new connections). A throw keeps the change pending: it is
   * recorded after the next render.
   */
  onServed?: (changes: { app: string; servers: ServedContainer[] }[]) => Promise<void>
}

/** Where the time of one change went, ms epoch (from the router's consumer; see {@link Router.kick}). */
export interface ChangeTrace {
  /** The log sequence of the first event the change covers. */
  seq: number
  /** Its `occurredAt`: when it was appended. */
  appendedAt: number
  /** When the router's subscription handed it over. */
  receivedAt: number
  /** When the read models the router reads had it. */
  readModelsAt: number
}

/** Reads what the route table is built from (of these apps only, when named), in one consistent snapshot. */
export async function readRows(pool: pg.Pool, only?: readonly string[]): Promise<RouteRows> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    const [apps, domains, containers, maintenance, releases, certs] = [
      await liveApps(client, only),
      await allDomains(client, only),
      await webContainers(client, only),
      await maintenanceApps(client, only),
      await currentConfigs(client, only),
      await attachedCerts(client, only),
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
  /** The apps the pending change is about, whose rows must be read (undefined with a change pending: every app). */
  #pendingApps: Set<string> | undefined = new Set()
  /** Apps whose rows changed in memory ({@link applyDirect}): their routes are rebuilt, nothing read. */
  #pendingTouched = new Set<string>()
  /** Apps created or destroyed since the last pass: their rows are read whole (nothing kept from memory). */
  #pendingFresh = new Set<string>()
  /** Direct changes applied while a full read is under way: applied again to what it read. */
  #replay: DirectChange[] | undefined
  /** The trace of the oldest pending change, if its asker gave one. */
  #pendingTrace: ChangeTrace | undefined
  /** The read models' rows as of the last pass (undefined: none yet, the next pass reads everything). */
  #index: RowIndex | undefined
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #lastStart = 0
  /** What nginx's dict holds, as far as this router knows (undefined: unknown, post the full table). */
  #applied: DictContents | undefined
  /** The epoch of this router's last full set: nginx answering another one restarted (or another router wrote). */
  #epoch: string | undefined
  /** Certificates checked with node:crypto, by id (chain and key hash): true when they parse. */
  #certsChecked = new Map<string, boolean>()
  #stopped = false
  /** Renders again when the first served certificate expires. */
  #expiry: NodeJS.Timeout | undefined
  /** Renders that failed since the last good one. */
  failures = 0
  /** The records of what is served, one after another (see {@link #recordAfter}). */
  #recording: Promise<void> = Promise.resolve()
  /** What each app is recorded as served on. */
  readonly #served: Map<string, ServedSets extends ReadonlyMap<string, infer V> ? V : never>
  /** A render again after a record that failed (only one pending). */
  #retry: NodeJS.Timeout | undefined
  /** How late the process's event loop ran since the last pass (logged with each: a busy loop delays deliveries and answers). */
  readonly #loopDelay = monitorEventLoopDelay({ resolution: 10 })
  /** The longest garbage collection pause since the last pass, ms (one cause of a late loop). */
  #gcMaxMs = 0
  readonly #gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) this.#gcMaxMs = Math.max(this.#gcMaxMs, e.duration)
  })

  constructor(opts: RouterOptions) {
    this.#o = opts
    this.#windowMs = opts.windowMs ?? 0
    this.#served = new Map(opts.served ?? [])
    this.#loopDelay.enable()
    this.#gc.observe({ entryTypes: ['gc'] })
  }

  /**
   * Asks for a render of these apps' routes (undefined: of every app), coalesced with what is
   * pending; `trace` says where the time of the change went before it came here (logged with the pass).
   * `fresh`: apps among them created or destroyed (their rows are all read anew).
   */
  kick(asked = Date.now(), apps?: Iterable<string>, trace?: ChangeTrace, fresh?: Iterable<string>): void {
    if (this.#stopped) return
    if (this.#pendingSince === undefined) this.#pendingApps = new Set()
    this.#pendingSince ??= asked
    if (apps === undefined) this.#pendingApps = undefined
    else if (this.#pendingApps) for (const a of apps) this.#pendingApps.add(a)
    for (const a of fresh ?? []) this.#pendingFresh.add(a)
    if (trace && (!this.#pendingTrace || trace.seq < this.#pendingTrace.seq)) this.#pendingTrace = trace
    if (this.#running || this.#timer) return
    const wait = Math.max(0, this.#lastStart + this.#windowMs - Date.now())
    if (wait === 0) this.#running = this.#loop().finally(() => (this.#running = undefined))
    else
      this.#timer = setTimeout(() => {
        this.#timer = undefined
        this.#running = this.#loop().finally(() => (this.#running = undefined))
      }, wait)
  }

  /**
   * Applies container and domain changes (from their events, in log order) to the rows in memory,
   * with no wait for the read models and no read, and asks for a pass of the apps they touch. Answers
   * the changes it could not apply (no rows yet, or an app not live here): their apps' rows must come
   * from the read models.
   */
  applyDirect(changes: readonly DirectChange[], asked = Date.now(), trace?: ChangeTrace): DirectChange[] {
    const index = this.#index
    if (!index || this.#stopped) return [...changes]
    const rest: DirectChange[] = []
    const apps = new Set<string>()
    for (const c of changes) {
      const touched = applyTo(index, c)
      if (touched) {
        for (const a of touched) apps.add(a)
        this.#replay?.push(c)
      } else rest.push(c)
    }
    if (apps.size > 0) {
      for (const a of apps) this.#pendingTouched.add(a)
      this.kick(asked, [], trace)
    }
    return rest
  }

  /**
   * Whether a release of `app` with `config` leaves its routes as they are (see
   * {@link RowIndex.sameRouterSettings}); false while the rows are not read yet.
   */
  sameRouterSettings(app: string, config: Record<string, string>): boolean {
    return this.#index?.sameRouterSettings(app, config) ?? false
  }

  /** Renders every app now (after any render under way) and resolves when it is applied. */
  async sync(): Promise<void> {
    this.kick()
    await this.idle()
  }

  /** Resolves when nothing is pending, being applied or being recorded. */
  async idle(): Promise<void> {
    while (this.#timer || this.#running || (this.#pendingSince !== undefined && !this.#stopped)) {
      if (this.#running) await this.#running
      else await sleep(this.#windowMs)
    }
    await this.#recording
  }

  /** The peers nginx holds, as far as this router knows; undefined: unknown (nothing posted yet, or nginx restarted). */
  peers(): Iterable<string> | undefined {
    return this.#applied?.peers()
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
    this.#loopDelay.disable()
    this.#gc.disconnect()
    clearTimeout(this.#timer)
    clearTimeout(this.#expiry)
    clearTimeout(this.#retry)
    this.#timer = undefined
    await this.#running
    await this.#recording
  }

  async #loop(): Promise<void> {
    // A pass started from kick() runs after the caller's turn: what it asks in the same turn joins it.
    await Promise.resolve()
    while (this.#pendingSince !== undefined && !this.#stopped) {
      const wait = this.#lastStart + this.#windowMs - Date.now()
      if (wait > 0) await sleep(wait)
      const asked = this.#pendingSince
      const apps = this.#pendingApps
      const touched = this.#pendingTouched
      const fresh = this.#pendingFresh
      const trace = this.#pendingTrace
      this.#pendingSince = undefined
      this.#pendingApps = new Set()
      this.#pendingTouched = new Set()
      this.#pendingFresh = new Set()
      this.#pendingTrace = undefined
      this.#lastStart = Date.now()
      try {
        await this.#once(asked, apps, touched, trace, fresh)
      } catch (err) {
        // What it was about comes again with the next pass.
        if (apps && this.#index) {
          this.#retryApps([...apps, ...touched])
          for (const a of fresh) this.#pendingFresh.add(a)
        } else this.#index = undefined
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

  /** Apps whose change did not reach nginx: in the next pass. */
  #failedApps = new Set<string>()

  #retryApps(apps: Iterable<string>): void {
    for (const a of apps) this.#failedApps.add(a)
  }

  async #once(asked: number, asks: Set<string> | undefined, touched: Set<string>, trace: ChangeTrace | undefined, fresh: ReadonlySet<string>): Promise<void> {
    const startedAt = Date.now()
    const t0 = performance.now()
    const cpu0 = process.cpuUsage()
    const elu0 = performance.eventLoopUtilization()
    const opts = { domain: this.#o.domain, now: Date.now(), ...(this.#o.maxBodySizeCap ? { maxBodySizeCap: this.#o.maxBodySizeCap } : {}) }
    const nginx = this.#o.nginx
    // Everything is read on the first pass, when asked, and when what nginx holds is unknown.
    const full = asks === undefined || !this.#index || !this.#applied || !nginx.masterPid()
    let apps: Set<string> | undefined
    let index = this.#index
    if (full || !index) {
      // From here on, container changes applied to the rows in memory are applied again to what is read.
      this.#replay = []
      let rows: RouteRows
      try {
        if (index) await this.#o.beforeFullRead?.()
        rows = await readRows(this.#o.pool)
      } catch (err) {
        this.#replay = undefined
        throw err
      }
      index = new RowIndex()
      index.replace(undefined, rows, this.#o.domain)
      for (const c of this.#replay) applyTo(index, c)
      this.#replay = undefined
      this.#failedApps.clear()
    } else {
      const want = new Set([...asks!, ...this.#failedApps])
      this.#failedApps.clear()
      apps = new Set(touched)
      if (want.size > 0) {
        const rows = await readRows(this.#o.pool, [...want])
        for (const a of index.replace(want, rows, this.#o.domain, true, fresh)) apps.add(a)
      }
    }
    this.#index = index
    const idx = index
    const t1 = performance.now()
    const table = index.table(apps, opts)
    if (full || table.certs.length > 0) this.#renderAtExpiry(index.certExpiries())
    const { byApp, dropped } = contributions(table, { reserved: this.#o.reserved ?? [], certOk: (id, c) => this.#certOk(id, c) })
    for (const d of [...table.dropped, ...dropped]) this.#o.log.warn(d, 'router: left out of the routes')
    const next = new Map<string, AppContribution | undefined>(byApp)
    for (const app of apps ?? this.#applied?.apps() ?? []) if (!next.has(app)) next.set(app, undefined)
    let contents = this.#applied
    let cs: ChangeSet
    if (contents && nginx.masterPid()) cs = contents.changes(next)
    else {
      contents = new DictContents()
      contents.commit(next)
      cs = fullSet(contents.state(), `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`)
    }
    const t2 = performance.now()
    const rowsOf = () => idx.rows(apps)
    if (isEmpty(cs)) {
      this.#recordAfter(rowsOf(), table, full, apps)
      routeUpdates.inc({ result: 'unchanged' })
      this.#o.onApplied?.({ result: { ok: 'unchanged' }, asked, done: Date.now(), table, full })
      return
    }
    if (this.#o.transform) cs = this.#o.transform(cs)
    const result = await nginx.apply(cs)
    const done = Date.now()
    if (result.ok) {
      if (cs.full) {
        this.#applied = contents
        this.#epoch = cs.epoch
      } else contents.commit(next)
      this.failures = 0
      const ms = (x: number) => Math.round(x * 10) / 10
      const cpu = process.cpuUsage(cpu0)
      const loopMaxMs = this.#loopDelay.max / 1e6
      const gcMaxMs = this.#gcMaxMs
      this.#loopDelay.reset()
      this.#gcMaxMs = 0
      this.#o.log.info(
        {
          full: cs.full === true,
          covered: apps?.size ?? index.size,
          apps: Object.keys(cs.apps ?? {}).length,
          hosts: Object.keys(cs.hosts ?? {}).length,
          certs: Object.keys(cs.certs ?? {}).length,
          changed: result.changed,
          applyMs: ms(result.applyMs),
          sinceAskedMs: done - asked,
          // Where the time went, ms: event appended -> handed to the router -> in its read models ->
          // waiting for the pass before -> rows read -> model and change set -> nginx answered.
          steps: {
            ...(trace
              ? {
                  deliveryMs: trace.receivedAt - trace.appendedAt,
                  readModelsMs: trace.readModelsAt - trace.receivedAt,
                  queuedMs: startedAt - trace.readModelsAt,
                }
              : {}),
            readMs: ms(t1 - t0),
            modelMs: ms(t2 - t1),
            applyMs: ms(result.applyMs),
            ...(trace ? { sinceAppendMs: done - trace.appendedAt, seq: trace.seq } : {}),
          },
          // The post to nginx, ms: JSON, until nginx's worker began, nginx at work and its CPU, the answer back.
          ...(result.steps
            ? {
                apply: {
                  encodeMs: ms(result.steps.encode),
                  toNginxMs: result.steps.toNginx,
                  inNginxMs: result.steps.inNginx,
                  nginxCpuMs: ms(result.steps.nginxCpu),
                  backMs: result.steps.back,
                },
              }
            : {}),
          // This process during the pass (every service in it): CPU ms, the event loop's busy share,
          // and since the last pass the longest the loop was late (a busy loop delays deliveries) and
          // the longest garbage collection.
          process: {
            cpuMs: ms((cpu.user + cpu.system) / 1000),
            loopBusy: Math.round(performance.eventLoopUtilization(elu0).utilization * 100) / 100,
            loopMaxLateMs: ms(loopMaxMs),
            gcMaxMs: ms(gcMaxMs),
          },
        },
        'router: routes changed',
      )
      this.#recordAfter(rowsOf(), table, full, apps)
    } else {
      this.failures++
      // Unreachable: nginx may have restarted with an empty dict; the next pass posts the full table.
      if (result.unreachable) this.#applied = undefined
      else if (apps) this.#retryApps(apps)
      this.#o.log.error(
        { reason: result.reason, code: result.code, full: cs.full === true },
        'router: nginx refused the change set; continuing with the routes it has (retried on the next change)',
      )
    }
    const outcome = result.ok ? 'applied' : 'failed'
    routeUpdates.inc({ result: outcome })
    routeUpdateDuration.observe({ result: outcome }, Math.max(0, done - asked) / 1000)
    this.#o.onApplied?.({ result, asked, done, table, full })
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

  /**
   * {@link #record} after the records before it, apart from the passes: a record waits on the log,
   * which may not answer for seconds (a NATS server lost), and must not hold up the next routes.
   */
  #recordAfter(rows: RouteRows, table: RouteTable, full: boolean, apps: ReadonlySet<string> | undefined): void {
    this.#recording = this.#recording
      .then(() => this.#record(rows, table, full, apps))
      .catch((err) => this.#o.log.warn({ err }, 'router: cannot record what it serves'))
  }

  /**
   * Records what changed in the served sets of `apps` (of every app when `full`), once
   * live; on failure, tries again with a render in a second.
   */
  async #record(rows: RouteRows, table: RouteTable, full: boolean, apps: ReadonlySet<string> | undefined): Promise<void> {
    const onServed = this.#o.onServed
    if (!onServed) return
    const covered = servedSets(rows, table)
    const changes = servedChanges(this.#served, covered)
    const keep = () => {
      // An app gone from the routes (destroyed) is served on nothing: forgotten.
      for (const app of full ? [...this.#served.keys()] : (apps ?? [])) if (!covered.has(app)) this.#served.delete(app)
      for (const [app, servers] of covered) this.#served.set(app, servers)
    }
    if (changes.length === 0) {
      keep()
      return
    }
    // Recorded once nginx answered: from the event on, every new request reaches these containers.
    try {
      await onServed(changes)
      keep()
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

/** Applies a direct change to `index`: the apps whose routes it may change; undefined when not applied. */
function applyTo(index: RowIndex, c: DirectChange): string[] | undefined {
  switch (c.kind) {
    case 'domain-added':
    case 'domain-removed':
      return index.applyDomain(c)
    default:
      return index.applyContainer(c) ? [c.app] : undefined
  }
}
