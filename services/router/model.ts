/**
 * The router's pure model: read-model rows -> a route table (which host names reach which app, on
 * which servers, with which limits, and which certificates serve which host names over TLS). No I/O;
 * `render.ts` turns the table into nginx config.
 */
import { createHash } from 'node:crypto'
import type { ServedContainer } from '../../domain/platform/events.js'

/** The read-model rows the table is built from (the router reads them in one snapshot). */
export interface RouteRows {
  /** Live apps (`liveApps`). */
  apps: readonly { name: string }[]
  /** Custom domains (`allDomains`). */
  domains: readonly { domain: string; app: string }[]
  /** Announced containers (`webContainers`: `web` only). */
  containers: readonly { container: string; app: string; type: string; host: string; port: number | null; state: string; release?: number }[]
  /** Apps in maintenance mode (`maintenanceApps`). */
  maintenance: readonly { app: string }[]
  /** The config of each app's current release (`currentConfigs`). */
  releases: readonly { app: string; config: Record<string, string> }[]
  /** Domains attached to a certificate (`attachedCerts`). */
  certs: readonly { domain: string; app: string; name: string; certificate: string; key: string; notAfter: string }[]
}

/** One upstream server: where a `web` container answers (its published port on the Docker host). */
export interface Server {
  host: string
  port: number
}

/** What the router does for one app. */
export interface Route {
  app: string
  /** `<app>.<platform domain>` first, then the custom domains, sorted. */
  hosts: string[]
  /**
   * The app's `web` containers that are `up`, sorted; when none is, those `stopping` (they serve
   * until their drain time ends: better than a 503 while the new ones get ready); empty: 503.
   */
  servers: Server[]
  /** Maintenance mode: 503 whatever runs. */
  maintenance: boolean
  /** nginx `client_max_body_size` (`WHARF_MAX_BODY_SIZE`, default {@link DEFAULT_MAX_BODY_SIZE}). */
  maxBodySize: string
  /** Proxy read/send timeout, s (`WHARF_PROXY_TIMEOUT`, default {@link DEFAULT_PROXY_TIMEOUT_S}). */
  timeoutS: number
}

/** Something of the rows the table leaves out, and why (the router logs it). */
export interface Dropped {
  app: string
  what: string
  reason: string
}

/** A certificate the router serves, with the host names of its app it serves them for. */
export interface TableCert {
  app: string
  /** Its name within the app. */
  name: string
  /** Host names of the app's route attached to it, sorted. */
  domains: string[]
  /** PEM chain, leaf first. */
  certificate: string
  /** PEM private key. */
  key: string
  /** 16 hex digits of SHA-256 over chain and key: the files' name, so a new pair is a new config text. */
  id: string
}

export interface RouteTable {
  routes: Route[]
  /** Certificates for HTTPS by SNI, sorted by app and name. */
  certs: TableCert[]
  dropped: Dropped[]
}

export interface ModelOptions {
  /** The platform domain: apps answer at `<app>.<domain>`. */
  domain: string
  /** Now, ms since the epoch: a certificate past its `notAfter` is left out. */
  now: number
  /**
   * The largest body an app may take, nginx size (`WHARF_MAX_BODY_SIZE_CAP`, default `100m`): an app's
   * `WHARF_MAX_BODY_SIZE` above it, or `0` (no limit), gets this one. Omitted: no cap.
   */
  maxBodySizeCap?: string
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }
/** Bytes of an nginx size (`0` is no limit: Infinity). */
function sizeBytes(size: string): number {
  const m = /^([0-9]+)([kmg]?)$/.exec(size)
  if (!m || m[1] === '0') return Infinity
  return Number(m[1]) * SIZE_UNITS[m[2]!]!
}

/** `size`, or `cap` when `size` is larger (or unbounded). */
export function capSize(size: string, cap: string | undefined): string {
  return cap !== undefined && sizeBytes(size) > sizeBytes(cap) ? cap : size
}

/**
 * Per-app router settings live in the app's config (as Deis' router annotations did), so a
 * `config:set` rolls them out with a release: `WHARF_MAX_BODY_SIZE` (nginx size: `512k`, `10m`, `1g`;
 * `0` and anything above `WHARF_MAX_BODY_SIZE_CAP` mean the cap) and `WHARF_PROXY_TIMEOUT` (whole seconds, 1..3600).
 */
export const MAX_BODY_SIZE_VAR = 'WHARF_MAX_BODY_SIZE'
export const PROXY_TIMEOUT_VAR = 'WHARF_PROXY_TIMEOUT'
/** nginx's own default. */
export const DEFAULT_MAX_BODY_SIZE = '1m'
/** nginx's own default, s. */
export const DEFAULT_PROXY_TIMEOUT_S = 60

const SIZE = /^(0|[1-9][0-9]{0,8}[kmg]?)$/
const TIMEOUT = /^[1-9][0-9]{0,3}$/

/** Builds the route table. Apps sorted by name; a host name claimed twice goes to the first claim (platform hosts first). */
export function routeTable(rows: RouteRows, opts: ModelOptions): RouteTable {
  const index = new RowIndex()
  index.replace(undefined, rows)
  return index.table(undefined, opts)
}

type ContainerRow = RouteRows['containers'][number]

/** A container's change, from its event (`ContainerStarted`, `-Stopping`, `-Stopped`, `-Crashed`). */
export type ContainerChange =
  | { kind: 'started'; app: string; type: string; container: string; host: string; port: number | null; release: number }
  | { kind: 'stopping' | 'stopped' | 'crashed'; app: string; container: string }
/** A custom domain's change, from its event (`DomainAdded`, `DomainRemoved`). */
export type DomainChange = { kind: 'domain-added' | 'domain-removed'; app: string; domain: string }
/** A change the router applies to its rows straight from its event, with no wait for a read model. */
export type DirectChange = ContainerChange | DomainChange
type CertRow = RouteRows['certs'][number]

/** One app's rows. */
interface AppRows {
  domains: string[]
  containers: ContainerRow[]
  maintenance: boolean
  config: Record<string, string> | undefined
  certs: CertRow[]
}

/**
 * The rows a route table is built from, by app, patched one app at a time: the router keeps one in
 * memory, reads only the rows of the apps an event names, and builds the routes of those apps (and of
 * the apps whose claims on a host name they touch) instead of the whole table.
 */
export class RowIndex {
  readonly #live = new Set<string>()
  readonly #apps = new Map<string, AppRows>()
  /** Custom domain -> the live apps that added it. */
  readonly #claims = new Map<string, Set<string>>()

  /** How many apps are live. */
  get size(): number {
    return this.#live.size
  }

  /**
   * Replaces the rows of `apps` (undefined: of every app) with `rows`, which must hold all of theirs
   * and no other app's. Answers the apps whose routes may have changed: `apps` and every app that
   * claims a host name they claimed, claim or whose platform host name they are. `keepContainers`:
   * an app live before keeps its containers (kept current by {@link applyContainer}, which may be
   * ahead of the read model `rows` come from); so does it its custom domains ({@link applyDomain}),
   * except the apps in `fresh` (created or destroyed meanwhile: a new incarnation has nothing of the old).
   */
  replace(apps: Iterable<string> | undefined, rows: RouteRows, domain?: string, keepContainers = false, fresh: ReadonlySet<string> = new Set()): Set<string> {
    const names = apps === undefined ? undefined : new Set(apps)
    const kept = new Map<string, ContainerRow[]>()
    const keptDomains = new Map<string, string[]>()
    const touched = new Set<string>()
    const claimsOf = (app: string) => {
      for (const d of this.#apps.get(app)?.domains ?? []) touched.add(d)
      if (domain) touched.add(`${app}.${domain}`)
    }
    if (names === undefined) {
      this.#live.clear()
      this.#apps.clear()
      this.#claims.clear()
    } else {
      for (const app of names) {
        if (keepContainers && this.#live.has(app) && !fresh.has(app)) {
          kept.set(app, this.#apps.get(app)!.containers)
          keptDomains.set(app, this.#apps.get(app)!.domains)
        }
        claimsOf(app)
        for (const d of this.#apps.get(app)?.domains ?? []) this.#unclaim(d, app)
        this.#apps.delete(app)
        this.#live.delete(app)
      }
    }
    for (const a of rows.apps) {
      this.#live.add(a.name)
      this.#apps.set(a.name, { domains: [], containers: [], maintenance: false, config: undefined, certs: [] })
    }
    for (const d of rows.domains) {
      const r = this.#apps.get(d.app)
      if (!r || keptDomains.has(d.app)) continue
      r.domains.push(d.domain)
      this.#claim(d.domain, d.app)
    }
    for (const [app, ds] of keptDomains) {
      const r = this.#apps.get(app)
      if (!r) continue
      r.domains = [...ds]
      for (const d of ds) this.#claim(d, app)
    }
    for (const c of rows.containers) if (!kept.has(c.app)) this.#apps.get(c.app)?.containers.push(c)
    for (const [app, cs] of kept) {
      const r = this.#apps.get(app)
      if (r) r.containers = cs
    }
    for (const m of rows.maintenance) {
      const r = this.#apps.get(m.app)
      if (r) r.maintenance = true
    }
    for (const rel of rows.releases) {
      const r = this.#apps.get(rel.app)
      if (r) r.config = rel.config
    }
    for (const c of rows.certs) this.#apps.get(c.app)?.certs.push(c)
    const out = new Set<string>(names ?? this.#live)
    if (names !== undefined) {
      for (const app of names) claimsOf(app)
      for (const d of touched) {
        for (const app of this.#claims.get(d) ?? []) out.add(app)
        // A platform host name: the app it belongs to (its route keeps it whatever others claim).
        if (domain && d.endsWith(`.${domain}`)) {
          const owner = d.slice(0, -domain.length - 1)
          if (this.#live.has(owner)) out.add(owner)
        }
      }
    }
    return out
  }

  /**
   * Applies a container's change as the containers read model does (started: up, with its address;
   * stopping: draining; stopped: gone; crashed), to a live app only. True when applied; false: the
   * app is not live here (its rows must come from the read models).
   */
  applyContainer(c: ContainerChange): boolean {
    const r = this.#live.has(c.app) ? this.#apps.get(c.app) : undefined
    if (!r) return false
    const i = r.containers.findIndex((x) => x.container === c.container)
    const old = i >= 0 ? r.containers[i] : undefined
    const rest = i >= 0 ? [...r.containers.slice(0, i), ...r.containers.slice(i + 1)] : [...r.containers]
    switch (c.kind) {
      case 'started':
        r.containers = [...rest, { container: c.container, app: c.app, type: c.type, host: c.host, port: c.port, state: 'up', release: c.release }]
        break
      case 'stopping':
        if (old?.state === 'up') r.containers = [...rest, { ...old, state: 'stopping' }]
        break
      case 'stopped':
        r.containers = rest
        break
      case 'crashed':
        if (old) r.containers = [...rest, { ...old, state: 'crashed' }]
        break
    }
    return true
  }

  /**
   * Applies a custom domain's change as the domains and certs read models do (added: the domain is
   * this app's and no other's; removed: gone from the app, and its certificate attachments with it),
   * to a live app only. Answers the apps whose routes may change (the app and every other claimant of
   * the domain); undefined: the app is not live here (its rows must come from the read models).
   */
  applyDomain(c: DomainChange): string[] | undefined {
    const r = this.#live.has(c.app) ? this.#apps.get(c.app) : undefined
    if (!r) return undefined
    const touched = new Set([c.app, ...(this.#claims.get(c.domain) ?? [])])
    if (c.kind === 'domain-added') {
      for (const other of this.#claims.get(c.domain) ?? []) {
        if (other === c.app) continue
        const o = this.#apps.get(other)
        if (o) o.domains = o.domains.filter((d) => d !== c.domain)
        this.#unclaim(c.domain, other)
      }
      if (!r.domains.includes(c.domain)) r.domains = [...r.domains, c.domain]
      this.#claim(c.domain, c.app)
    } else {
      r.domains = r.domains.filter((d) => d !== c.domain)
      r.certs = r.certs.filter((x) => x.domain !== c.domain)
      this.#unclaim(c.domain, c.app)
    }
    return [...touched]
  }

  #claim(domain: string, app: string): void {
    let set = this.#claims.get(domain)
    if (!set) this.#claims.set(domain, (set = new Set()))
    set.add(app)
  }

  #unclaim(domain: string, app: string): void {
    const set = this.#claims.get(domain)
    set?.delete(app)
    if (set?.size === 0) this.#claims.delete(domain)
  }

  /** Rows of these apps (undefined: all), as {@link RouteRows}. */
  rows(apps?: Iterable<string>): RouteRows {
    const out: { -readonly [K in keyof RouteRows]: RouteRows[K][number][] } = {
      apps: [],
      domains: [],
      containers: [],
      maintenance: [],
      releases: [],
      certs: [],
    }
    for (const app of apps ?? this.#live) {
      const r = this.#apps.get(app)
      if (!r || !this.#live.has(app)) continue
      out.apps.push({ name: app })
      for (const d of r.domains) out.domains.push({ domain: d, app })
      out.containers.push(...r.containers)
      if (r.maintenance) out.maintenance.push({ app })
      if (r.config) out.releases.push({ app, config: r.config })
      out.certs.push(...r.certs)
    }
    return out
  }

  /** Every certificate's `notAfter` (ms epoch). */
  certExpiries(): number[] {
    const out: number[] = []
    for (const r of this.#apps.values()) for (const c of r.certs) out.push(Date.parse(c.notAfter))
    return out
  }

  /**
   * The routes of these apps (undefined: every live app; apps not live are left out), sorted by app.
   * A custom domain goes to the first live app (by name) that added it, unless it is an app's
   * platform host name (`<app>.<domain>`): then to no custom claim.
   */
  table(apps: Iterable<string> | undefined, opts: ModelOptions): RouteTable {
    const dropped: Dropped[] = []
    const names = [...new Set(apps ?? this.#live)].filter((a) => this.#live.has(a)).sort()
    const platformSuffix = `.${opts.domain}`
    const isPlatformHost = (d: string) => d.endsWith(platformSuffix) && this.#live.has(d.slice(0, -platformSuffix.length))
    const routes = names.map((app): Route => {
      const r = this.#apps.get(app)!
      const hosts = [`${app}.${opts.domain}`]
      for (const d of [...r.domains].sort()) {
        let first = true
        for (const other of this.#claims.get(d) ?? []) if (other < app && this.#live.has(other)) first = false
        if (isPlatformHost(d) || !first) dropped.push({ app, what: `domain ${d}`, reason: 'the host name already belongs to another route' })
        else hosts.push(d)
      }
      const up: Server[] = []
      const draining: Server[] = []
      for (const c of r.containers) {
        if (c.type !== 'web' || (c.state !== 'up' && c.state !== 'stopping')) continue
        if (c.port === null) {
          if (c.state === 'up') dropped.push({ app, what: `container ${c.container.slice(0, 12)}`, reason: 'announced without a port' })
          continue
        }
        // Draining containers (asked to stop, still serving for the drain time): only while the app has no
        // container up, e.g. when all its old tasks were stopped before any new one was announced.
        ;(c.state === 'up' ? up : draining).push({ host: c.host, port: c.port })
      }
      const cfg = r.config ?? {}
      return {
        app,
        hosts,
        servers: (up.length ? up : draining).sort((a, b) => a.host.localeCompare(b.host) || a.port - b.port),
        maintenance: r.maintenance,
        maxBodySize: capSize(
          setting(app, cfg, MAX_BODY_SIZE_VAR, SIZE, DEFAULT_MAX_BODY_SIZE, dropped, (v) => v.toLowerCase()),
          opts.maxBodySizeCap,
        ),
        timeoutS: Number(setting(app, cfg, PROXY_TIMEOUT_VAR, TIMEOUT, String(DEFAULT_PROXY_TIMEOUT_S), dropped, (v) => (Number(v) > 3600 ? 'x' : v))),
      }
    })
    const certRows: CertRow[] = []
    for (const app of names) certRows.push(...this.#apps.get(app)!.certs)
    return { routes, certs: tableCerts(certRows, routes, opts.now, dropped), dropped }
  }
}

/** The attached certificates of live routes: only host names the app's route has, only unexpired ones. */
function tableCerts(certs: readonly CertRow[], routes: readonly Route[], now: number, dropped: Dropped[]): TableCert[] {
  const hostsOf = new Map(routes.map((r) => [r.app, new Set(r.hosts)]))
  const byCert = new Map<string, TableCert>()
  for (const c of certs) {
    const hosts = hostsOf.get(c.app)
    if (!hosts) continue
    if (!hosts.has(c.domain)) {
      dropped.push({ app: c.app, what: `certificate ${c.name} for ${c.domain}`, reason: 'the host name is not routed to the app' })
      continue
    }
    if (!(Date.parse(c.notAfter) > now)) {
      dropped.push({ app: c.app, what: `certificate ${c.name} for ${c.domain}`, reason: `expired on ${c.notAfter}` })
      continue
    }
    const key = `${c.app}\n${c.name}`
    const cert = byCert.get(key)
    if (cert) cert.domains.push(c.domain)
    else {
      const id = createHash('sha256').update(c.certificate).update('\0').update(c.key).digest('hex').slice(0, 16)
      byCert.set(key, { app: c.app, name: c.name, domains: [c.domain], certificate: c.certificate, key: c.key, id })
    }
  }
  return [...byCert.values()].map((c) => ({ ...c, domains: c.domains.sort() })).sort((a, b) => a.app.localeCompare(b.app) || a.name.localeCompare(b.name))
}

function setting(
  app: string,
  cfg: Record<string, string>,
  name: string,
  re: RegExp,
  fallback: string,
  dropped: Dropped[],
  norm: (v: string) => string,
): string {
  const raw = cfg[name]
  if (raw === undefined || raw === '') return fallback
  const v = norm(raw.trim())
  if (re.test(v)) return v
  dropped.push({ app, what: `${name}=${JSON.stringify(raw.slice(0, 64))}`, reason: `not valid; using ${fallback}` })
  return fallback
}

/** What the router serves each app on: the containers behind its route's servers, sorted by container id. */
export type ServedSets = ReadonlyMap<string, readonly ServedContainer[]>

/**
 * The containers behind each route's servers (the `web` containers the table routes to), by app.
 * A container whose release the rows lack is left out: the record says which release serves.
 */
export function servedSets(rows: RouteRows, table: RouteTable): Map<string, ServedContainer[]> {
  const byAddress = new Map<string, { container: string; release: number }>()
  for (const c of rows.containers) {
    if (c.type !== 'web' || (c.state !== 'up' && c.state !== 'stopping') || c.port === null || c.release === undefined) continue
    byAddress.set(`${c.app}\n${c.host}:${c.port}`, { container: c.container, release: c.release })
  }
  const out = new Map<string, ServedContainer[]>()
  for (const r of table.routes) {
    const served: ServedContainer[] = []
    for (const s of r.servers) {
      const c = byAddress.get(`${r.app}\n${s.host}:${s.port}`)
      if (c) served.push({ container: c.container, release: c.release, host: s.host, port: s.port })
    }
    out.set(
      r.app,
      served.sort((a, b) => a.container.localeCompare(b.container)),
    )
  }
  return out
}

/**
 * The apps whose served set differs between `before` and `after`, with their new set: what the
 * router records (`RouteServed`). An app missing from `before` served nothing; an app missing from
 * `after` (destroyed) is not recorded: nothing of it is served, and its name may be reused.
 */
export function servedChanges(before: ServedSets, after: ServedSets): { app: string; servers: ServedContainer[] }[] {
  const out: { app: string; servers: ServedContainer[] }[] = []
  for (const [app, servers] of after) {
    if (key(before.get(app) ?? []) !== key(servers)) out.push({ app, servers: [...servers] })
  }
  return out
}

function key(servers: readonly ServedContainer[]): string {
  return servers.map((s) => `${s.container} ${s.release} ${s.host}:${s.port}`).join(',')
}
